/**
 * Drawing one class activation map over the picture. The map arrives at feature resolution (e.g. 7x7 or
 * 14x14, uint8); the GPU upsamples it bilinearly (a LINEAR-filtered texture sampled at the output pixel
 * centres: half-pixel-centre bilinear, as the engines resize) and looks each value up in the colormap
 * texture, so opacity, colormap and class changes cost one redraw and nothing on the server. Where WebGL
 * is unavailable, canvas 2D does the same in JavaScript (bilinear on the values, then the colormap: scaling
 * an already coloured map would blend colours, which is not what the map's values say).
 */

export interface OverlayDraw {
  /** `mapSize[0] * mapSize[1]` bytes, row-major. */
  map: Uint8Array;
  /** `[height, width]`. */
  mapSize: [number, number];
  /** The part of the map covering the frame, fractions `[x, y, w, h]`. */
  content: [number, number, number, number];
  /** 256-entry RGB lookup table (768 bytes). */
  lut: Uint8Array;
  /** 0..1. */
  opacity: number;
}

export interface OverlayRenderer {
  readonly kind: 'webgl' | '2d';
  draw(d: OverlayDraw): void;
  clear(): void;
  dispose(): void;
}

const VERTEX = `
attribute vec2 a_pos;
varying vec2 v_uv;
void main() {
  // Canvas y grows downwards, texture rows too: flip so row 0 of the map is the top of the frame.
  v_uv = vec2(a_pos.x * 0.5 + 0.5, 0.5 - a_pos.y * 0.5);
  gl_Position = vec4(a_pos, 0.0, 1.0);
}`;

const FRAGMENT = `
precision mediump float;
uniform sampler2D u_map;
uniform sampler2D u_lut;
uniform vec4 u_content;
uniform float u_opacity;
varying vec2 v_uv;
void main() {
  float v = texture2D(u_map, u_content.xy + v_uv * u_content.zw).r;
  vec3 c = texture2D(u_lut, vec2((v * 255.0 + 0.5) / 256.0, 0.5)).rgb;
  gl_FragColor = vec4(c * u_opacity, u_opacity);
}`;

class GlRenderer implements OverlayRenderer {
  readonly kind = 'webgl' as const;
  private readonly program: WebGLProgram;
  private readonly mapTex: WebGLTexture;
  private readonly lutTex: WebGLTexture;
  private readonly buffer: WebGLBuffer;
  private lastLut: Uint8Array | undefined;
  private readonly uContent: WebGLUniformLocation;
  private readonly uOpacity: WebGLUniformLocation;

  constructor(private readonly gl: WebGLRenderingContext) {
    const compile = (type: number, src: string): WebGLShader => {
      const s = gl.createShader(type)!;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(s)}`);
      return s;
    };
    const p = gl.createProgram()!;
    gl.attachShader(p, compile(gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(p, compile(gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(`program: ${gl.getProgramInfoLog(p)}`);
    this.program = p;
    gl.useProgram(p);
    this.buffer = gl.createBuffer()!;
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(p, 'a_pos');
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    const texture = (unit: number, filter: number): WebGLTexture => {
      const t = gl.createTexture()!;
      gl.activeTexture(gl.TEXTURE0 + unit);
      gl.bindTexture(gl.TEXTURE_2D, t);
      // Non-power-of-two sizes need clamping and no mipmaps in WebGL 1.
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, filter);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, filter);
      return t;
    };
    this.mapTex = texture(0, gl.LINEAR);
    this.lutTex = texture(1, gl.NEAREST);
    gl.uniform1i(gl.getUniformLocation(p, 'u_map'), 0);
    gl.uniform1i(gl.getUniformLocation(p, 'u_lut'), 1);
    this.uContent = gl.getUniformLocation(p, 'u_content')!;
    this.uOpacity = gl.getUniformLocation(p, 'u_opacity')!;
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
  }

  draw(d: OverlayDraw): void {
    const gl = this.gl;
    const canvas = gl.canvas as HTMLCanvasElement;
    gl.viewport(0, 0, canvas.width, canvas.height);
    if (d.lut !== this.lastLut) {
      gl.activeTexture(gl.TEXTURE1);
      gl.bindTexture(gl.TEXTURE_2D, this.lutTex);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, 256, 1, 0, gl.RGB, gl.UNSIGNED_BYTE, d.lut);
      this.lastLut = d.lut;
    }
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.mapTex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, d.mapSize[1], d.mapSize[0], 0, gl.LUMINANCE, gl.UNSIGNED_BYTE, d.map);
    gl.uniform4f(this.uContent, d.content[0], d.content[1], d.content[2], d.content[3]);
    gl.uniform1f(this.uOpacity, d.opacity);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }

  clear(): void {
    this.gl.clearColor(0, 0, 0, 0);
    this.gl.clear(this.gl.COLOR_BUFFER_BIT);
  }

  dispose(): void {
    const gl = this.gl;
    gl.deleteTexture(this.mapTex);
    gl.deleteTexture(this.lutTex);
    gl.deleteBuffer(this.buffer);
    gl.deleteProgram(this.program);
  }
}

/**
 * Writes `d`'s map into `out` (RGBA, `w` x `h`): each pixel samples the map's content rectangle bilinearly
 * at its centre (half-pixel centres, edges clamped, as the GL path's LINEAR texture does), then looks the
 * value up in the colormap; alpha is the opacity (putImageData writes the pixels as they are).
 */
function paintMap(d: OverlayDraw, out: Uint8ClampedArray, w: number, h: number): void {
  const [mh, mw] = d.mapSize;
  const [cx, cy, cw, ch] = d.content;
  const alpha = Math.round(255 * d.opacity);
  const x0 = new Int32Array(w);
  const x1 = new Int32Array(w);
  const fx = new Float32Array(w);
  for (let x = 0; x < w; x++) {
    const sx = Math.min(mw - 1, Math.max(0, (cx + ((x + 0.5) / w) * cw) * mw - 0.5));
    x0[x] = Math.floor(sx);
    x1[x] = Math.min(mw - 1, x0[x] + 1);
    fx[x] = sx - x0[x];
  }
  for (let y = 0; y < h; y++) {
    const sy = Math.min(mh - 1, Math.max(0, (cy + ((y + 0.5) / h) * ch) * mh - 0.5));
    const r0 = Math.floor(sy) * mw;
    const r1 = Math.min(mh - 1, Math.floor(sy) + 1) * mw;
    const fy = sy - Math.floor(sy);
    for (let x = 0; x < w; x++) {
      const top = d.map[r0 + x0[x]] + (d.map[r0 + x1[x]] - d.map[r0 + x0[x]]) * fx[x];
      const bottom = d.map[r1 + x0[x]] + (d.map[r1 + x1[x]] - d.map[r1 + x0[x]]) * fx[x];
      const v = 3 * Math.round(top + (bottom - top) * fy);
      const o = 4 * (y * w + x);
      out[o] = d.lut[v];
      out[o + 1] = d.lut[v + 1];
      out[o + 2] = d.lut[v + 2];
      out[o + 3] = alpha;
    }
  }
}

class CanvasRenderer implements OverlayRenderer {
  readonly kind = '2d' as const;
  private image: ImageData | undefined;

  constructor(private readonly ctx: CanvasRenderingContext2D) {}

  draw(d: OverlayDraw): void {
    const { width, height } = this.ctx.canvas;
    if (!this.image || this.image.width !== width || this.image.height !== height) this.image = this.ctx.createImageData(width, height);
    paintMap(d, this.image.data, width, height);
    this.ctx.putImageData(this.image, 0, 0);
  }

  clear(): void {
    this.ctx.clearRect(0, 0, this.ctx.canvas.width, this.ctx.canvas.height);
  }

  dispose(): void {}
}

/**
 * WebGL on `glCanvas` where available (unless `prefer` is '2d'), else canvas 2D on `fallbackCanvas`. A
 * canvas keeps the first context type it was asked for, hence two canvases.
 */
export function createOverlayRenderer(glCanvas: HTMLCanvasElement, fallbackCanvas: HTMLCanvasElement, prefer: 'webgl' | '2d' = 'webgl'): OverlayRenderer {
  if (prefer === 'webgl') {
    // preserveDrawingBuffer: snapshots and pixel reads see the last drawn map.
    const gl = glCanvas.getContext('webgl', { premultipliedAlpha: true, preserveDrawingBuffer: true, antialias: false });
    if (gl) {
      try {
        return new GlRenderer(gl);
      } catch {
        // A broken driver: fall back to 2D below.
      }
    }
  }
  return new CanvasRenderer(fallbackCanvas.getContext('2d')!);
}
