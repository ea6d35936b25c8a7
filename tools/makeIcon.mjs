#!/usr/bin/env node
// Renders media/icon.svg (the extension icon, drawn by hand) to media/icon.png, 128x128, with
// sharp (librsvg). Run after editing the SVG: node tools/makeIcon.mjs
import sharp from 'sharp';

const root = new URL('..', import.meta.url).pathname;
const info = await sharp(`${root}media/icon.svg`, { density: 144 }).resize(128, 128).png({ compressionLevel: 9 }).toFile(`${root}media/icon.png`);
console.log(`media/icon.png ${info.width}x${info.height} ${info.size} bytes`);
