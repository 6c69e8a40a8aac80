import sharp from 'sharp';
for (const t of ['0', '1', '.', 'fox squirrel 0.43', 'gy', '1. kit fox']) {
  const t0 = performance.now();
  const { info } = await sharp({ text: { text: `<span foreground="white">${t}</span>`, font: 'DejaVu Sans 14', rgba: true, dpi: 72 } }).raw().toBuffer({ resolveWithObject: true });
  console.log(JSON.stringify(t), info.width, info.height, info.channels, (performance.now()-t0).toFixed(1));
}
