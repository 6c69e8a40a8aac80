/**
 * A small XML reader for annotation files (Pascal VOC, Stanford 40): elements and their text, nothing more
 * (attributes, namespaces and DTDs are not needed there). One forward pass over the text: every search
 * starts where the previous one ended, so the work is linear in the size of the input whatever it holds,
 * where the earlier regular expressions went quadratic on many unclosed tags.
 */
import { InputError } from '../common/index.ts';

/** An element: its name, its direct text (entities decoded) and its child elements in order. */
export interface XmlElement {
  name: string;
  text: string;
  children: XmlElement[];
}

/** Work done by `readXmlTree`, for tests and benches: characters the scanner looked at, over all searches. */
export interface XmlScanStats {
  examined: number;
}

const NAME = /^[A-Za-z_][\w.:-]*$/;

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9A-Fa-f]+|#\d+|lt|gt|amp|quot|apos);/g, (_m, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : ENTITIES[e],
  );
}

interface Open {
  el: XmlElement;
  parts: string[];
}

/**
 * Parses `xml` into a tree under a nameless document element (its children are the top-level elements).
 * Comments, processing instructions and a DOCTYPE are skipped, CDATA is kept as text.
 * @throws InputError naming `where` for a tag left open, a closing tag that does not match, or a bad name.
 */
export function readXmlTree(xml: string, where: string, stats: XmlScanStats = { examined: 0 }): XmlElement {
  const doc: Open = { el: { name: '', text: '', children: [] }, parts: [] };
  const stack: Open[] = [doc];
  let pos = 0;
  /** The next `token` at or after `from`, counting what was looked at; -1 when there is none. */
  const find = (token: string, from: number): number => {
    const at = xml.indexOf(token, from);
    stats.examined += (at < 0 ? xml.length : at + token.length) - from;
    return at;
  };
  const close = (top: Open) => {
    top.el.text = decodeEntities(top.parts.join(''));
  };
  for (;;) {
    const lt = find('<', pos);
    const top = stack[stack.length - 1];
    top.parts.push(xml.slice(pos, lt < 0 ? xml.length : lt));
    if (lt < 0) break;
    const [opener, closer] = xml.startsWith('<!--', lt)
      ? ['<!--', '-->']
      : xml.startsWith('<![CDATA[', lt)
        ? ['<![CDATA[', ']]>']
        : xml.startsWith('<?', lt)
          ? ['<?', '?>']
          : ['<', '>'];
    const end = find(closer, lt + opener.length);
    if (end < 0) throw new InputError(`${where}: '${opener}' at offset ${lt} is never closed`);
    pos = end + closer.length;
    if (opener === '<![CDATA[') top.parts.push(xml.slice(lt + opener.length, end));
    if (opener !== '<') continue;
    const tag = xml.slice(lt + 1, end);
    if (tag.startsWith('!')) continue; // <!DOCTYPE ...>
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      if (stack.length === 1 || name !== top.el.name) {
        throw new InputError(`${where}: </${name}> at offset ${lt} does not close ${stack.length === 1 ? 'any element' : `<${top.el.name}>`}`);
      }
      close(top);
      stack.pop();
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const name = (selfClosing ? tag.slice(0, -1) : tag).trim().split(/\s/, 1)[0];
    if (!NAME.test(name)) throw new InputError(`${where}: bad tag <${tag.slice(0, 40)}> at offset ${lt}`);
    const el: XmlElement = { name, text: '', children: [] };
    top.el.children.push(el);
    if (!selfClosing) stack.push({ el, parts: [] });
  }
  if (stack.length > 1) throw new InputError(`${where}: <${stack[stack.length - 1].el.name}> is never closed`);
  close(doc);
  return doc.el;
}

/** The first element named `name` below `el` (depth first, document order), or undefined. */
export function findElement(el: XmlElement, name: string): XmlElement | undefined {
  const todo = [...el.children].reverse();
  while (todo.length > 0) {
    const next = todo.pop()!;
    if (next.name === name) return next;
    for (let i = next.children.length - 1; i >= 0; i--) todo.push(next.children[i]);
  }
  return undefined;
}

/** Every element named `name` below `el`, not looking inside the ones found (document order). */
export function findElements(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const todo = [...el.children].reverse();
  while (todo.length > 0) {
    const next = todo.pop()!;
    if (next.name === name) out.push(next);
    else for (let i = next.children.length - 1; i >= 0; i--) todo.push(next.children[i]);
  }
  return out;
}
