/**
 * The playground's form: model, mode, prompts and numbers, the submit and
 * Cancel buttons and the error (role=alert) region. It reads and writes the
 * values as text (SettingsInput) and switches what Edit mode shows; what a
 * submit does is the playground's business.
 */
import { field, h } from "./dom.js";
import type { Mode, SettingsInput } from "./image-request.js";

export interface SettingsForm {
  readonly element: HTMLFormElement;
  readonly model: HTMLSelectElement;
  readonly submit: HTMLButtonElement;
  readonly cancel: HTMLButtonElement;
  setMode(mode: Mode): void;
  read(): SettingsInput;
  /** Fills the given fields (the mode too, when given). */
  write(values: Partial<SettingsInput>): void;
  focus(field: keyof SettingsInput): void;
  /** Shows a readable error in the alert region; "" clears it. */
  showError(message: string): void;
  setRunning(running: boolean): void;
}

const DEFAULTS = { width: "512", height: "512", steps: "20", guidanceScale: "7.5", n: "1", strength: "0.75" };

function numberInput(id: string, value: string, attrs: Record<string, string | number> = {}): HTMLInputElement {
  return h("input", { id, name: id, type: "number", inputmode: "decimal", value, ...attrs });
}

/**
 * `editSlot` (the source image and mask editor) is placed in the form and
 * shown only in Edit mode.
 */
export function createSettingsForm(editSlot: HTMLElement): SettingsForm {
  const model = h("select", { id: "model", name: "model" });
  const radio = (value: Mode, label: string) => {
    const input = h("input", { type: "radio", name: "mode", id: `mode-${value}`, value, checked: value === "generate" });
    return h("label", { class: "radio", for: input.id }, input, label);
  };
  const modeGroup = h(
    "fieldset",
    { class: "mode", role: "radiogroup", "aria-labelledby": "mode-legend" },
    h("legend", { id: "mode-legend" }, "Mode"),
    radio("generate", "Generate"),
    radio("edit", "Edit"),
  );
  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: 3, required: true, placeholder: "Describe the image, e.g. “a lighthouse on a cliff at dusk”" });
  const negative = h("textarea", { id: "negative-prompt", name: "negative_prompt", rows: 2, placeholder: "Optional: what to keep out, e.g. “blurry”" });
  const width = numberInput("width", DEFAULTS.width, { min: 8, step: 8 });
  const height = numberInput("height", DEFAULTS.height, { min: 8, step: 8 });
  const steps = numberInput("steps", DEFAULTS.steps, { min: 1, step: 1, inputmode: "numeric" });
  const guidance = numberInput("guidance-scale", DEFAULTS.guidanceScale, { min: 0, step: 0.5 });
  const seed = numberInput("seed", "", { min: 0, step: 1, inputmode: "numeric", placeholder: "random" });
  const n = numberInput("images", DEFAULTS.n, { min: 1, step: 1, inputmode: "numeric" });
  // min is the spinner's floor only (0 is refused; smaller values can be typed).
  const strength = numberInput("strength", DEFAULTS.strength, { min: 0.05, max: 1, step: 0.05 });
  const strengthField = field("Strength", strength, "More than 0, up to 1: low keeps most of the source, 1 ignores it");
  const submit = h("button", { type: "submit", class: "primary" }, "Generate");
  const cancel = h("button", { type: "button", disabled: true }, "Cancel");
  const alert = h("div", { role: "alert", class: "alert" });
  editSlot.hidden = true;
  strengthField.hidden = true;

  const element = h(
    "form",
    { class: "settings", novalidate: true, "aria-label": "Image settings" },
    field("Model", model),
    modeGroup,
    field("Prompt", prompt, "Ctrl+Enter (⌘+Enter) runs it"),
    field("Negative prompt", negative),
    editSlot,
    h(
      "div",
      { class: "numbers" },
      field("Width", width),
      field("Height", height),
      field("Steps", steps),
      field("Guidance scale", guidance),
      field("Seed", seed, "empty = random"),
      field("Images", n),
      strengthField,
    ),
    h("div", { class: "actions" }, submit, cancel),
    alert,
  );

  const inputs: Record<Exclude<keyof SettingsInput, "mode">, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement> = {
    model, prompt, negativePrompt: negative, width, height, steps, guidanceScale: guidance, seed, n, strength,
  };
  const modeRadios = [...modeGroup.querySelectorAll<HTMLInputElement>("input[type=radio]")];
  const currentMode = (): Mode => (modeRadios.find((r) => r.checked)?.value === "edit" ? "edit" : "generate");

  const form: SettingsForm = {
    element, model, submit, cancel,
    setMode(mode) {
      for (const r of modeRadios) r.checked = r.value === mode;
      applyMode();
    },
    read() {
      return {
        mode: currentMode(),
        model: model.value, prompt: prompt.value, negativePrompt: negative.value,
        width: width.value, height: height.value, steps: steps.value, guidanceScale: guidance.value,
        seed: seed.value, n: n.value, strength: strength.value,
      };
    },
    write(values) {
      for (const [key, value] of Object.entries(values) as Array<[keyof SettingsInput, string]>) {
        if (key === "mode") continue;
        // A model no longer listed keeps the current choice.
        if (key === "model" && ![...model.options].some((o) => o.value === value)) continue;
        inputs[key].value = value;
      }
      if (values.mode !== undefined) form.setMode(values.mode);
    },
    focus(key) {
      const el = key === "mode" ? modeRadios.find((r) => r.checked) : inputs[key];
      el?.focus();
    },
    showError(message) {
      alert.textContent = message;
    },
    setRunning(running) {
      submit.disabled = running;
      cancel.disabled = !running;
    },
  };

  function applyMode(): void {
    const edit = currentMode() === "edit";
    editSlot.hidden = !edit;
    strengthField.hidden = !edit;
    submit.textContent = edit ? "Run edit" : "Generate";
  }
  for (const r of modeRadios) r.addEventListener("change", applyMode);

  // Ctrl/Cmd+Enter submits from either prompt; plain Enter still makes a new line.
  for (const area of [prompt, negative]) {
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        if (!submit.disabled) element.requestSubmit(submit);
      }
    });
  }
  return form;
}
