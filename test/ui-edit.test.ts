/**
 * Edit mode in a real browser: upload a source image, paint a mask with the
 * mouse, run the edit; then edit the result with a mask painted from the keyboard. The multipart request the page sends is decoded: the
 * mask must follow OpenAI's convention (PNG at the source's size, painted
 * pixels transparent, the rest opaque).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page, Route } from "playwright-core";
import sharp from "sharp";
import { browserSkip, openBrowser, waitUntil } from "./helpers/browser.js";
import { startDemoServer } from "./helpers/demo-server.js";
import { alertText, playground } from "./helpers/ui.js";

// Not square, so a mask with width and height swapped would show. Multiples of 128: the demo model's
// VAE scales by 64 and its UNet halves the latents once, so its sizes are multiples of 128.
const SOURCE = { width: 384, height: 256 };
const EDITS = "**/v3/images/edits";

test("ui-edit: a mask painted on the canvas is sent with the edit and the result lands in the gallery", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const server = await startDemoServer(t);
  const { page } = await openBrowser(t);
  await page.goto(`${server.url}/#/`);
  const ui = playground(page);
  await waitUntil(() => ui.model.inputValue(), (v) => v === "demo", 'the Model select to offer "demo"');

  await ui.editMode.check();
  await ui.runEdit.waitFor();
  assert.equal(await ui.generate.count(), 0, 'in Edit mode the submit button is "Run edit"');
  await ui.strength.waitFor();
  const source = await sharp({ create: { ...SOURCE, channels: 3, background: { r: 40, g: 120, b: 200 } } }).png().toBuffer();
  await ui.sourceImage.setInputFiles({ name: "source.png", mimeType: "image/png", buffer: source });
  await ui.mask.waitFor();

  // One horizontal stroke through the middle, from 30% to 70% of the width.
  const box = await waitUntil(() => ui.mask.boundingBox(), (b) => b !== null && b.width > 0 && b.height > 0, "the Mask canvas to be laid out");
  const at = (fx: number, fy: number) => [box!.x + box!.width * fx, box!.y + box!.height * fy] as const;
  await page.mouse.move(...at(0.3, 0.5));
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(...at(0.3 + 0.04 * i, 0.5));
  await page.mouse.up();

  const prompt = "a red door";
  await ui.fill({ prompt, steps: 4, seed: 99 });
  const sent = nextEditRequest(page);
  await ui.runEdit.click();
  const { body, contentType } = await sent;
  await ui.results(prompt).waitFor();
  assert.equal(await alertText(page), "", "no error is shown");

  // The request, as the server received it: multipart with the image, the mask and the settings.
  assert.match(contentType, /^multipart\/form-data; boundary=/);
  assert.ok(body !== null && body.length > 0, "the browser exposed the request body");
  const form = await new Response(new Uint8Array(body), { headers: { "content-type": contentType } }).formData();
  assert.equal(form.get("prompt"), prompt);
  assert.equal(form.get("model"), "demo");
  const image = form.get("image");
  const mask = form.get("mask");
  assert.ok(image instanceof Blob && mask instanceof Blob, "image and mask are files");
  const imageMeta = await sharp(Buffer.from(await image.arrayBuffer())).metadata();
  assert.deepEqual([imageMeta.width, imageMeta.height], [SOURCE.width, SOURCE.height], "the source is sent at its own size");

  const maskPng = Buffer.from(await mask.arrayBuffer());
  const maskMeta = await sharp(maskPng).metadata();
  assert.equal(maskMeta.format, "png");
  assert.deepEqual([maskMeta.width, maskMeta.height], [SOURCE.width, SOURCE.height], "the mask has the source's size");
  const { data, info } = await sharp(maskPng).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const alpha = (fx: number, fy: number) => data[(Math.floor(fy * info.height) * info.width + Math.floor(fx * info.width)) * info.channels + 3];
  for (const fx of [0.35, 0.5, 0.65]) assert.equal(alpha(fx, 0.5), 0, `the painted stroke is transparent at x=${fx}`);
  for (const [fx, fy] of [[0.05, 0.05], [0.95, 0.05], [0.05, 0.95], [0.95, 0.95], [0.5, 0.1], [0.1, 0.5]]) {
    assert.equal(alpha(fx, fy), 255, `unpainted (${fx}, ${fy}) is opaque`);
  }
  const share = await transparentShare(maskPng);
  t.diagnostic(`mask: ${(share * 100).toFixed(1)}% painted`);
  assert.ok(share > 0.01 && share < 0.5, `a stroke, not the whole image: ${(share * 100).toFixed(1)}% transparent`);

  // The server ran the edit.
  const stats = await server.stats("demo");
  assert.ok(stats.nodes.some((n) => n.name === "ImageGenExecutor" && n.processed >= 1), JSON.stringify(stats));

  // "Edit this image" takes a gallery result as the next source.
  await ui.results(prompt).getByRole("button", { name: "Edit this image" }).click();
  await waitUntil(() => ui.editMode.isChecked(), (c) => c, "Edit mode to stay selected");
  await ui.mask.waitFor();
  // This time the mask is painted from the keyboard: focus it, a dot, then a stroke with Shift+arrows.
  await ui.mask.focus();
  await page.keyboard.press("Space");
  for (let i = 0; i < 8; i++) await page.keyboard.press("Shift+ArrowRight");
  const again = "a blue window";
  await ui.prompt.fill(again);
  const resent = nextEditRequest(page);
  await ui.runEdit.click();
  const second = await resent;
  await ui.results(again).waitFor();
  const form2 = await new Response(new Uint8Array(second.body!), { headers: { "content-type": second.contentType } }).formData();
  const image2 = form2.get("image");
  assert.ok(image2 instanceof Blob);
  const meta2 = await sharp(Buffer.from(await image2.arrayBuffer())).metadata();
  assert.deepEqual([meta2.width, meta2.height], [SOURCE.width, SOURCE.height], "the gallery result (the source's size) is the new source");
  const mask2 = form2.get("mask");
  assert.ok(mask2 instanceof Blob, "the keyboard-painted mask is sent");
  const painted = await transparentShare(Buffer.from(await mask2.arrayBuffer()));
  t.diagnostic(`keyboard mask: ${(painted * 100).toFixed(1)}% painted`);
  assert.ok(painted > 0.001 && painted < 0.5, `a keyboard stroke, not nothing or everything: ${(painted * 100).toFixed(1)}% transparent`);
  assert.equal(await alertText(page), "");
});

/** The share of a mask's pixels that are fully transparent (painted). */
async function transparentShare(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  let transparent = 0;
  for (let i = 3; i < data.length; i += info.channels) if (data[i] === 0) transparent++;
  return transparent / (info.width * info.height);
}

/**
 * The next edit request's body. Read on an intercepted route: without
 * interception Chromium reports no body for a multipart request carrying Blobs.
 */
function nextEditRequest(page: Page): Promise<{ body: Buffer | null; contentType: string }> {
  return new Promise((resolve) => {
    const handler = async (route: Route) => {
      const r = route.request();
      const sent = r.method() === "POST" ? { body: r.postDataBuffer(), contentType: (await r.headerValue("content-type")) ?? "" } : undefined;
      await route.continue();
      if (sent !== undefined) {
        await page.unroute(EDITS, handler);
        resolve(sent);
      }
    };
    void page.route(EDITS, handler);
  });
}
