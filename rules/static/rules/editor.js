/* The rule editor: catalog-driven widgets, add/remove rows, and the live sentence.
 *
 * The catalog (event types, fields with label, unit, kind, choices, range; operators with
 * the kinds they fit) comes from the page as JSON. Every widget keeps the name Django's
 * formsets expect, so the form also works (plainer) without this script.
 */
(function () {
  "use strict";
  const catalog = JSON.parse(document.getElementById("rules-catalog").textContent);
  const form = document.getElementById("rule-form");
  const sentence = document.getElementById("rule-sentence");
  if (!form) return;
  const factTypes = Object.fromEntries(catalog.fact_types.map((ft) => [ft.name, ft]));

  const $ = (root, sel) => root.querySelector(sel);
  const $$ = (root, sel) => Array.from(root.querySelectorAll(sel));
  const named = (row, field) => $(row, `[name="${row.dataset.prefix}-${field}"]`);
  const isDeleted = (row) => { const d = named(row, "DELETE"); return d && d.checked; };
  const el = (tag, attrs = {}, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const unitText = (unit) => (!unit ? "" : unit.startsWith("/") ? `out of ${unit.slice(1)}` : unit);

  // -- steps --------------------------------------------------------------------------------
  function stepRows() { return $$(document, "#steps-table tbody tr.step-row").filter((r) => !isDeleted(r)); }
  function stepTypes() { return stepRows().map((r) => named(r, "fact_type").value); }
  function numberSteps() {
    stepRows().forEach((row, i) => { $(row, ".step-number").textContent = i + 1; });
  }

  // -- value widgets ------------------------------------------------------------------------
  function valueWidget(name, id, value, kind, field, operator) {
    const wrap = el("span", { class: "value-widget" });
    const list = operator === "in" || operator === "not_in";
    if (field && field.choices && field.choices.length && kind === "text") {
      if (list) {
        const hidden = el("input", { type: "hidden", name, id, value: value || "" });
        const chosen = new Set((value || "").split(",").map((s) => s.trim()).filter(Boolean));
        wrap.appendChild(hidden);
        field.choices.forEach((choice) => {
          const label = el("label", { class: "choice-box" });
          const box = el("input", { type: "checkbox", value: choice });
          box.checked = chosen.has(choice);
          box.addEventListener("change", () => {
            hidden.value = $$(wrap, "input[type=checkbox]").filter((b) => b.checked).map((b) => b.value).join(", ");
            hidden.dispatchEvent(new Event("change", { bubbles: true }));
          });
          label.append(box, " " + choice);
          wrap.appendChild(label);
        });
        return wrap;
      }
      const select = el("select", { name, id });
      select.appendChild(el("option", { value: "" }, "—"));
      field.choices.forEach((c) => select.appendChild(el("option", { value: c }, c)));
      select.value = value || "";
      wrap.appendChild(select);
      return wrap;
    }
    if (kind === "boolean") {
      const select = el("select", { name, id });
      [["", "—"], ["true", "yes"], ["false", "no"]].forEach(([v, t]) => select.appendChild(el("option", { value: v }, t)));
      const v = (value || "").toLowerCase();
      select.value = ["true", "yes", "1"].includes(v) ? "true" : ["false", "no", "0"].includes(v) ? "false" : "";
      wrap.appendChild(select);
      return wrap;
    }
    if (kind === "number" || kind === "integer") {
      const input = el("input", {
        type: "number", name, id, value: value || "", step: kind === "integer" ? "1" : "any",
        min: field && field.min !== null ? field.min : undefined, max: field && field.max !== null ? field.max : undefined,
        class: "value-number",
      });
      wrap.appendChild(input);
      if (field && field.unit) wrap.appendChild(el("span", { class: "unit" }, " " + unitText(field.unit)));
      return wrap;
    }
    if (kind === "date") {
      wrap.appendChild(el("input", { type: "date", name, id, value: value || "" }));
      return wrap;
    }
    wrap.appendChild(el("input", { type: "text", name, id, value: value || "", size: 14 }));
    return wrap;
  }

  function replaceValue(row, kind, field, operator) {
    const slot = $(row, ".col-value .value-slot");
    const current = named(row, "value");
    const value = current ? current.value : "";
    const name = `${row.dataset.prefix}-value`;
    const id = `id_${row.dataset.prefix}-value`;
    const key = [kind, field && field.name, operator].join("|");
    if (slot.dataset.key === key && current) return;
    slot.dataset.key = key;
    slot.replaceChildren(valueWidget(name, id, value, kind, field, operator));
  }

  // -- conditions ---------------------------------------------------------------------------
  function conditionRows() { return $$(document, "#conditions-table tbody tr.cond-row"); }

  function fieldFor(row) {
    const types = stepTypes();
    const step = parseInt(named(row, "step").value || "1", 10);
    const ft = factTypes[types[step - 1]];
    return { ft, field: ft ? ft.fields.find((f) => f.name === named(row, "field").value) : null };
  }

  function refreshFieldOptions(row) {
    const select = named(row, "field");
    const { ft } = fieldFor(row);
    const current = select.value;
    select.replaceChildren(el("option", { value: "" }, "— field —"));
    if (!ft) return;
    const own = el("optgroup", { label: `${ft.label} fields` });
    const derived = el("optgroup", { label: catalog.derived_label });
    ft.fields.forEach((f) => {
      const option = el("option", { value: f.name }, f.label + (f.unit ? ` (${unitText(f.unit)})` : ""));
      (f.derived ? derived : own).appendChild(option);
    });
    select.append(own);
    if (derived.children.length) select.append(derived);
    select.value = ft.fields.some((f) => f.name === current) ? current : "";
  }

  function refreshOperator(row) {
    const { field } = fieldFor(row);
    const select = named(row, "operator");
    const current = select.value;
    const ops = catalog.operators.filter((op) => !field || op.kinds.includes(field.kind));
    select.replaceChildren(el("option", { value: "" }, "—"));
    ops.forEach((op) => select.appendChild(el("option", { value: op.code }, op.label)));
    select.value = ops.some((op) => op.code === current) ? current : "";
    const help = $(row, ".field-help");
    help.textContent = field ? [field.help, field.min !== null || field.max !== null ? `range ${field.min ?? ""}–${field.max ?? ""}` : "",
      field.choices && field.choices.length ? field.choices.join(", ") : ""].filter(Boolean).join(" · ") : "";
  }

  function refreshValue(row) {
    const { field } = fieldFor(row);
    const operator = named(row, "operator").value;
    const op = catalog.operators.find((o) => o.code === operator);
    const needsValue = !op || op.needs_value;
    $(row, ".col-value").classList.toggle("hidden-cell", !needsValue);
    $(row, ".col-parameter").classList.toggle("hidden-cell", !needsValue);
    replaceValue(row, field ? field.kind : "text", field, operator);
    // A condition compares with a value or with a parameter: hide the value once a parameter is picked.
    $(row, ".col-value .value-slot").hidden = Boolean(named(row, "parameter").value);
  }

  function refreshParameterChoices() {
    const names = parameterRows().filter((r) => !isDeleted(r)).map((r) => named(r, "name").value).filter(Boolean);
    conditionRows().forEach((row) => {
      const select = named(row, "parameter");
      const current = select.value;
      select.replaceChildren(el("option", { value: "" }, "— or a parameter —"));
      names.forEach((n) => select.appendChild(el("option", { value: n }, n)));
      if (current && !names.includes(current)) select.appendChild(el("option", { value: current }, current));
      select.value = current;
    });
  }

  function refreshCondition(row) {
    refreshFieldOptions(row);
    refreshOperator(row);
    refreshValue(row);
  }

  // -- parameters ---------------------------------------------------------------------------
  function parameterRows() { return $$(document, "#parameters-table tbody tr.param-row"); }
  function refreshParameter(row) {
    const kind = named(row, "kind").value;
    const unit = named(row, "unit").value;
    replaceValue(row, kind, { name: "", unit: "", choices: [], min: null, max: null }, "eq");
    $(row, ".param-unit-display").textContent = unitText(unit);
  }

  // -- pattern ------------------------------------------------------------------------------
  function refreshPattern() {
    const pattern = form.elements.pattern.value;
    $$(document, ".pattern-only").forEach((node) => { node.hidden = pattern === "single"; });
    const count = $(document, ".field-count");
    if (count) count.hidden = pattern !== "count";
  }

  // -- rows: add ----------------------------------------------------------------------------
  function addRow(prefix) {
    const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
    const index = parseInt(total.value, 10);
    const html = document.getElementById(`${prefix}-empty`).innerHTML.replace(/__prefix__/g, index);
    const tbody = $(document, `#${prefix}-table tbody`);
    tbody.insertAdjacentHTML("beforeend", html);
    total.value = index + 1;
    const row = tbody.lastElementChild;
    wireRow(row);
    if (prefix === "conditions") {
      named(row, "step").value = "1";
      named(row, "group").value = String(conditionRows().length);
    }
    refreshAll();
    const first = $(row, "select, input:not([type=hidden])");
    if (first) first.focus();
  }

  function wireRow(row) {
    if (row.classList.contains("cond-row")) {
      row.addEventListener("change", (e) => {
        const name = e.target.name || "";
        if (name.endsWith("-step")) refreshCondition(row);
        else if (name.endsWith("-field")) { refreshOperator(row); refreshValue(row); }
        else if (name.endsWith("-operator") || name.endsWith("-parameter")) refreshValue(row);
      });
    } else if (row.classList.contains("param-row")) {
      row.addEventListener("change", (e) => {
        const name = e.target.name || "";
        if (name.endsWith("-kind") || name.endsWith("-unit")) refreshParameter(row);
        if (name.endsWith("-name") || name.endsWith("-DELETE")) refreshParameterChoices();
      });
    } else if (row.classList.contains("step-row")) {
      row.addEventListener("change", () => { numberSteps(); conditionRows().forEach(refreshCondition); });
    }
  }

  function refreshAll() {
    numberSteps();
    refreshPattern();
    parameterRows().forEach(refreshParameter);
    refreshParameterChoices();
    conditionRows().forEach(refreshCondition);
  }

  // -- the sentence -------------------------------------------------------------------------
  let timer = null;
  let sequence = 0;
  function updateSentence() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++sequence;
      try {
        const response = await fetch(sentence.dataset.url, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: { "X-Requested-With": "XMLHttpRequest" },
        });
        if (!response.ok) return;
        const body = await response.json();
        if (mine === sequence) {
          sentence.textContent = body.sentence;
          sentence.classList.add("updated");
          setTimeout(() => sentence.classList.remove("updated"), 400);
        }
      } catch (err) { /* keep the last sentence */ }
    }, 250);
  }

  // -- the summary's length ---------------------------------------------------------------------
  const summaryCount = document.getElementById("summary-count");
  function countSummary() {
    if (!summaryCount || !form.elements.summary) return;
    const max = Number(summaryCount.dataset.max);
    const length = form.elements.summary.value.length;
    summaryCount.textContent = length > max
      ? `${length} of ${max} characters: ${length - max} too many`
      : `${length} of ${max} characters`;
    summaryCount.classList.toggle("rules-too-long", length > max);
  }
  if (form.elements.summary) form.elements.summary.addEventListener("input", countSummary);

  $$(document, ".rules-add").forEach((button) => button.addEventListener("click", () => addRow(button.dataset.formset)));
  $$(document, "tr.step-row, tr.cond-row, tr.param-row").forEach(wireRow);
  form.elements.pattern.addEventListener("change", refreshPattern);
  form.addEventListener("input", updateSentence);
  form.addEventListener("change", updateSentence);
  refreshAll();
  countSummary();
})();
