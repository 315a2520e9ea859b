// Makes docs/demo-grid.png, the README's grid of real demo outputs: asks a
// running graphserve (the demo, at its defaults) for each prompt below and
// lays the answers out with their prompts. No Python: Node and sharp.
//   npm start &   # or: node dist/src/cli/main.js demo
//   node tools/demo-model/grid.mjs [--url http://localhost:8000] [--out docs/demo-grid.png]
import { parseArgs } from "node:util";
import sharp from "sharp";

const { values } = parseArgs({ options: { url: { type: "string", default: "http://localhost:8000" }, out: { type: "string", default: "docs/demo-grid.png" } } });
// Held-out combinations (never seen together in training) in the first row, trained ones below.
const PROMPTS = [
  "a black circle on a blue background",
  "a red square on a green background",
  "a green triangle on a black background",
  "a white square on a yellow background",
  "a red circle on a blue background",
  "a yellow square on a black background",
  "a white triangle on a green background",
  "a blue circle on a white background",
];
const TILE = 192;
const LABEL = 40;
const COLUMNS = 4;

const tiles = [];
for (const [i, prompt] of PROMPTS.entries()) {
  const res = await fetch(`${values.url}/v3/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "demo", prompt, rng_seed: i + 1 }),
  });
  if (!res.ok) throw new Error(`${prompt}: HTTP ${res.status} ${await res.text()}`);
  const { data } = await res.json();
  const img = await sharp(Buffer.from(data[0].b64_json, "base64")).resize(TILE, TILE).toBuffer();
  const words = prompt.replace(/ background$/, "").split(" on ");
  const svg = `<svg width="${TILE}" height="${LABEL}" xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" fill="white"/>
    <text x="50%" y="16" font-family="sans-serif" font-size="13" text-anchor="middle">${words[0]}</text>
    <text x="50%" y="33" font-family="sans-serif" font-size="13" text-anchor="middle">on ${words[1]}${i < COLUMNS ? " (held out)" : ""}</text></svg>`;
  tiles.push({ input: img, left: (i % COLUMNS) * TILE, top: Math.floor(i / COLUMNS) * (TILE + LABEL) });
  tiles.push({ input: Buffer.from(svg), left: (i % COLUMNS) * TILE, top: Math.floor(i / COLUMNS) * (TILE + LABEL) + TILE });
}
const rows = Math.ceil(PROMPTS.length / COLUMNS);
await sharp({ create: { width: COLUMNS * TILE, height: rows * (TILE + LABEL), channels: 3, background: "white" } }).composite(tiles).png().toFile(values.out);
console.log(`${values.out}: ${PROMPTS.length} prompts from ${values.url} (seeds 1–${PROMPTS.length}, the demo's default size and steps)`);
