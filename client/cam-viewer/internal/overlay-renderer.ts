/**
 * Drawing one class activation map over the picture. The map arrives at feature resolution (e.g. 7x7 or
 * 14x14, uint8); the GPU upsamples it bilinearly (a LINEAR-filtered texture sampled at the output pixel
 * centres: half-pixel-centre bilinear, as the engines resize) and looks each value up in the colormap
 * texture, so opacity, colormap and class changes cost one redraw and nothing on the server. Where WebGL
 * is unavailable, canvas 2D does the same: the map coloured at its own size, then scaled by drawImage with
 * smoothing on (bilinear in current browsers).
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

class CanvasRenderer implements OverlayRenderer {
  readonly kind = '2d' as const;
  private readonly small = document.createElement('canvas');

  constructor(private readonly ctx: CanvasRenderingContext2D) {}

  draw(d: OverlayDraw): void {
    const [h, w] = d.mapSize;
    if (this.small.width !== w || this.small.height !== h) {
      this.small.width = w;
      this.small.height = h;
    }
    const sctx = this.small.getContext('2d')!;
    const img = sctx.createImageData(w, h);
    for (let i = 0; i < w * h; i++) {
      const v = d.map[i] * 3;
      img.data[4 * i] = d.lut[v];
      img.data[4 * i + 1] = d.lut[v + 1];
      img.data[4 * i + 2] = d.lut[v + 2];
      img.data[4 * i + 3] = 255;
    }
    sctx.putImageData(img, 0, 0);
    const { canvas } = this.ctx;
    this.ctx.clearRect(0, 0, canvas.width, canvas.height);
    this.ctx.globalAlpha = d.opacity;
    this.ctx.imageSmoothingEnabled = true;
    this.ctx.imageSmoothingQuality = 'low';
    this.ctx.drawImage(this.small, d.content[0] * w, d.content[1] * h, d.content[2] * w, d.content[3] * h, 0, 0, canvas.width, canvas.height);
    this.ctx.globalAlpha = 1;
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
