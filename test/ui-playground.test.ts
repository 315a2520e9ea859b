/**
 * The playground in a real browser against a real `graphserve demo`:
 * a generation streams partial previews and step progress, then lands in the
 * gallery with its seed; the result can be reused and downloaded. A graph
 * that cannot stream (the three-node pipeline) is asked again unstreamed.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import sharp from "sharp";
import { browserSkip, openBrowser, waitUntil } from "./helpers/browser.js";
import { startConfiguredServer, startDemoServer, writePipelineConfig } from "./helpers/demo-server.js";
import { distinct, installRecorder, readRecording } from "./helpers/page-recorder.js";
import { alertText, playground } from "./helpers/ui.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test("ui-playground: generate shows partial previews and progress, then the result in the gallery", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const server = await startDemoServer(t);
  const { page } = await openBrowser(t);
  await installRecorder(page);
  const sent: Record<string, unknown>[] = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === "/v3/images/generations") sent.push(r.postDataJSON() as Record<string, unknown>);
  });
  await page.goto(`${server.url}/#/`);
  const ui = playground(page);
  await waitUntil(() => ui.model.inputValue(), (v) => v === "demo", 'the Model select to offer "demo"');

  // An empty prompt must not look filled in: its placeholder is an instruction, set apart from typed text.
  const hint = await page.evaluate<{ text: string; italicPlaceholder: boolean; typed: string }>(`(() => {
    const el = document.querySelector("#prompt");
    const rules = [...document.styleSheets].flatMap((s) => [...s.cssRules]);
    const italicPlaceholder = rules.some((r) => (r.selectorText ?? "").includes("::placeholder") && r.style.fontStyle === "italic");
    return { text: el.placeholder, italicPlaceholder, typed: getComputedStyle(el).fontStyle };
  })()`);
  assert.match(hint.text, /^Describe the image, e\.g\. /);
  assert.equal(hint.italicPlaceholder, true, "placeholders are set in italics");
  assert.equal(hint.typed, "normal", "typed text is not");

  const prompt = "a yellow circle on a blue background";
  await ui.fill({ prompt, negativePrompt: "blurry", width: 512, height: 512, steps: 60, seed: 1234, images: 1 });
  await ui.generate.click();

  const result = ui.results(prompt);
  await result.waitFor();
  const status = await waitUntil(() => ui.status.textContent(), (s) => /Done/.test(s ?? ""), 'the status to say "Done"');
  assert.match(status ?? "", /1234/, "the status names the seed");
  assert.match((await result.textContent()) ?? "", /1234/, "the gallery item shows its seed");
  assert.equal(await alertText(page), "", "no error is shown");

  // What the browser asked for: a streamed generation with partial images and step progress.
  assert.equal(sent.length, 1);
  const body = sent[0];
  assert.equal(body.model, "demo");
  assert.equal(body.prompt, prompt);
  assert.equal(body.negative_prompt, "blurry");
  assert.equal(body.size, "512x512");
  assert.equal(body.num_inference_steps, 60);
  assert.equal(body.rng_seed, 1234);
  assert.equal(body.stream, true);
  assert.equal(body.stream_progress, true);
  assert.ok(typeof body.partial_images === "number" && body.partial_images >= 1, `partial_images requested: ${String(body.partial_images)}`);

  // Partial previews, then the final image; the progress bar followed the steps.
  const rec = await readRecording(page);
  t.diagnostic(`preview showed ${rec.previews.length} images; progress bar values: ${rec.progress.map((p) => p.value).join(" ")}`);
  assert.ok(rec.previews.length >= 2, `the preview showed at least one partial image and the final one; saw ${rec.previews.length} image(s)`);
  const firstResult = rec.results.find((r) => r.alt === `Result: ${prompt}`);
  assert.ok(firstResult !== undefined, "the recorder saw the result appear");
  assert.ok(rec.previews[0].t <= firstResult.t, "a partial preview was shown before the result reached the gallery");
  const steps = rec.progress.filter((p) => p.value > 0);
  assert.ok(distinct(steps.map((p) => p.value)).length >= 2, `the progress bar moved: ${JSON.stringify(steps.map((p) => p.value))}`);
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i].value >= steps[i - 1].value, "progress never goes back within a run");
  const last = steps.at(-1)!;
  // PNDM runs one step more than asked: the server's count is the maximum.
  assert.ok(last.max >= 60 && last.value === last.max, `the progress bar ended full: ${last.value}/${last.max}`);

  // The server ran it.
  const stats = await server.stats("demo");
  const imageGen = stats.nodes.find((n) => n.name === "ImageGenExecutor");
  assert.ok(imageGen !== undefined && imageGen.processed >= 1, `ImageGenExecutor processed the request: ${JSON.stringify(stats)}`);
  assert.ok(stats.runs.finished >= 1);

  // Download: a PNG of the requested size named after its seed.
  const link = result.getByRole("link", { name: "Download" });
  assert.match((await link.getAttribute("href")) ?? "", /^(data:image\/png|blob:)/);
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  assert.match(download.suggestedFilename(), /1234.*\.png$/);
  const png = await readFile((await download.path())!);
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [512, 512]);

  // Reuse settings refills the form from the gallery item.
  await ui.fill({ prompt: "something else", seed: "", steps: 3 });
  await result.getByRole("button", { name: "Reuse settings" }).click();
  await waitUntil(() => ui.seed.inputValue(), (v) => v === "1234", "Reuse settings to refill the seed");
  assert.equal(await ui.prompt.inputValue(), prompt);
  assert.equal(await ui.steps.inputValue(), "60");
});

test("ui-playground: a graph that cannot stream (the three-node pipeline) still generates, unstreamed", { skip: browserSkip, timeout: 60_000 }, async (t) => {
  const name = "pipelines/sd";
  const server = await startConfiguredServer(t, ["--config_path", await writePipelineConfig(name)]);
  const session = await openBrowser(t);
  const { page } = session;
  // The first, streamed attempt is refused with a 400 naming `stream`; the page then asks without streaming.
  session.allow(/Failed to load resource: the server responded with a status of 400/);
  const sent: Record<string, unknown>[] = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === "/v3/images/generations") sent.push(r.postDataJSON() as Record<string, unknown>);
  });
  await page.goto(`${server.url}/#/`);
  const ui = playground(page);
  await waitUntil(() => ui.model.locator("option").allTextContents(), (o) => o.includes(name), `the Model select to offer "${name}"`);
  await ui.model.selectOption(name);

  for (const prompt of ["a quiet harbour", "a busy market"]) {
    await ui.fill({ prompt, width: 256, height: 256, steps: 3, seed: 5 });
    await ui.generate.click();
    await ui.results(prompt).waitFor();
    assert.equal(await alertText(page), "", "no error is shown");
    await waitUntil(() => ui.status.textContent(), (s) => /Done/.test(s ?? ""), 'the status to say "Done"');
  }
  // Streamed once, refused, then unstreamed; the page remembers, so the second generation goes unstreamed at once.
  assert.deepEqual(sent.map((b) => b.stream === true), [true, false, false]);
  assert.equal(sent[1].stream_progress, undefined);
  assert.equal(sent[1].model, name);
});
