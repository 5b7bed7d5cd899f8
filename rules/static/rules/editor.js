/* The rule editor in a clinician's words.
 *
 * - Conditions sit under their event, in blocks: every block must hold; a block titled "Any of
 *   these" needs one of its conditions. Blocks and events are hidden inputs (group, step) that this
 *   script keeps numbered; nobody types a group number.
 * - Value widgets follow the catalog (event types, fields with label, unit, kind, choices, range),
 *   and a number is checked against its field's range as it is typed; the server's validation
 *   (rules.spec) stays the authority and checks everything again on save.
 * - Parameters are made from a label (the name follows it) and picked by label in conditions; a new
 *   rule's key is made from its name the same way.
 * - "Insert a value" buttons put a labelled chip, "[Pain after the run]", into the message or the
 *   summary (the server turns chips into the values' names and back); the sentence and the previews
 *   (filled from an example event by the server, each inserted value a chip) follow every change.
 *
 * Every widget keeps the name Django's formsets expect, so the form also posts without this script.
 */
(function () {
  "use strict";
  const form = document.getElementById("rule-form");
  if (!form) return;
  const catalog = JSON.parse(document.getElementById("rules-catalog").textContent);
  const factTypes = Object.fromEntries(catalog.fact_types.map((ft) => [ft.name, ft]));
  const messages = catalog.messages;
  const eventsBox = document.getElementById("rule-events");
  const editable = form.dataset.editable === "1";
  // Typed before this script ran (a slow page)? Looked at before the script changes anything.
  const typedEarly = Array.from(form.elements).some((box) => {
    if (box.type === "checkbox" || box.type === "radio") return box.checked !== box.defaultChecked;
    if (box.tagName === "SELECT" && !box.multiple) {
      const chosen = Array.from(box.options).findIndex((o) => o.defaultSelected);
      return box.options.length > 0 && box.selectedIndex !== Math.max(chosen, 0);
    }
    if (box.tagName === "SELECT") return Array.from(box.options).some((o) => o.selected !== o.defaultSelected);
    return "defaultValue" in box && box.value !== box.defaultValue;
  });

  const $ = (root, sel) => root.querySelector(sel);
  const $$ = (root, sel) => Array.from(root.querySelectorAll(sel));
  const named = (row, field) => $(row, `[name="${row.dataset.prefix}-${field}"]`);
  const isDeleted = (row) => { const d = row.dataset.prefix && named(row, "DELETE"); return Boolean(d && d.checked); };
  const el = (tag, attrs = {}, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const format = (template, values) => template.replace(/\{(\w+)\}/g, (all, key) => (key in values ? values[key] : all));
  const unitText = (unit) => (!unit ? "" : unit.startsWith("/") ? `out of ${unit.slice(1)}` : unit);
  const numberText = (n) => String(n);
  const pattern = () => form.elements.pattern.value;
  const choiceCode = (c) => (Array.isArray(c) ? c[0] : c);
  const choiceLabel = (c) => (Array.isArray(c) ? c[1] : c);

  // -- events and their blocks ----------------------------------------------------------------
  function events() { return $$(eventsBox, ":scope > .rules-event"); }
  function liveEvents() { return events().filter((s) => s.dataset.prefix && !isDeleted(s)); }
  function eventOf(node) { return node.closest(".rules-event"); }
  function factTypeOf(section) {
    const select = section && section.dataset.prefix ? named(section, "fact_type") : null;
    return select ? factTypes[select.value] || null : null;
  }
  function conditionRows(root = eventsBox) { return $$(root, "tr.cond-row"); }
  function fieldOf(row) {
    const ft = factTypeOf(eventOf(row));
    const name = named(row, "field").value;
    return ft ? ft.fields.find((f) => f.name === name) || null : null;
  }

  /* Number the events, keep each condition's hidden event number, and title the blocks. */
  function refreshStructure() {
    const sequence = pattern() === "sequence";
    let number = 0;
    events().forEach((section) => {
      if (section.dataset.orphan) return; // conditions of an event the rule lacks: shown with their error
      const removed = isDeleted(section);
      if (!removed) number += 1;
      section.classList.toggle("rules-removed", removed);
      $(section, ".rules-event-number").textContent = removed ? "Removed event" : sequence ? `Event ${number}` : "The event";
      $(section, ".rules-then").hidden = removed || number === 1 || !sequence;
      conditionRows(section).forEach((row) => {
        const box = named(row, "DELETE");
        if (removed && box && !box.checked) { box.checked = true; row.dataset.removedWithEvent = "1"; }
        if (!removed && row.dataset.removedWithEvent) { if (box) box.checked = false; delete row.dataset.removedWithEvent; }
        if (!removed) named(row, "step").value = String(number);
      });
      let firstBlock = true;
      $$(section, ".rules-block").forEach((block) => {
        const rows = conditionRows(block);
        const live = rows.filter((r) => !isDeleted(r));
        rows.forEach((r) => r.classList.toggle("rules-removed", isDeleted(r)));
        $(block, ".rules-block-title").hidden = live.length < 2;
        rows.forEach((r) => { $(r, ".rules-or").hidden = r === live[0] || isDeleted(r) || live.length < 2; });
        $(block, ".rules-and").hidden = firstBlock;
        if (live.length) firstBlock = false;
      });
    });
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
          const box = el("input", { type: "checkbox", value: choiceCode(choice) });
          box.checked = chosen.has(choiceCode(choice));
          box.addEventListener("change", () => {
            hidden.value = $$(wrap, "input[type=checkbox]").filter((b) => b.checked).map((b) => b.value).join(", ");
            hidden.dispatchEvent(new Event("change", { bubbles: true }));
          });
          label.append(box, " " + choiceLabel(choice));
          wrap.appendChild(label);
        });
        return wrap;
      }
      const select = el("select", { name, id });
      select.appendChild(el("option", { value: "" }, "—"));
      field.choices.forEach((c) => select.appendChild(el("option", { value: choiceCode(c) }, choiceLabel(c))));
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
        min: field && field.min !== null && field.min !== undefined ? field.min : undefined,
        max: field && field.max !== null && field.max !== undefined ? field.max : undefined,
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
    const key = [kind, field && field.name, operator].join("|");
    if (slot.dataset.key === key && current) return;
    slot.dataset.key = key;
    slot.replaceChildren(valueWidget(`${row.dataset.prefix}-value`, `id_${row.dataset.prefix}-value`, value, kind, field, operator));
  }

  // -- conditions ---------------------------------------------------------------------------
  function refreshFieldOptions(row) {
    const select = named(row, "field");
    const ft = factTypeOf(eventOf(row));
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

  function rangeText(field) {
    if (field.min !== null && field.max !== null) return `range ${numberText(field.min)}–${numberText(field.max)}`;
    if (field.min !== null) return `at least ${numberText(field.min)}`;
    if (field.max !== null) return `at most ${numberText(field.max)}`;
    return "";
  }

  function refreshOperator(row) {
    const field = fieldOf(row);
    const select = named(row, "operator");
    const current = select.value;
    const ops = catalog.operators.filter((op) => !field || op.kinds.includes(field.kind));
    select.replaceChildren(el("option", { value: "" }, "—"));
    ops.forEach((op) => select.appendChild(el("option", { value: op.code }, op.label)));
    select.value = ops.some((op) => op.code === current) ? current : "";
    $(row, ".field-help").textContent = field
      ? [field.help, rangeText(field), (field.choices || []).map(choiceLabel).join(", ")].filter(Boolean).join(" · ")
      : "";
  }

  function refreshValue(row) {
    const field = fieldOf(row);
    const operator = named(row, "operator").value;
    const op = catalog.operators.find((o) => o.code === operator);
    const needsValue = !op || op.needs_value;
    $(row, ".col-value").classList.toggle("hidden-cell", !needsValue);
    $(row, ".col-parameter").classList.toggle("hidden-cell", !needsValue);
    replaceValue(row, field ? field.kind : "text", field, operator);
    // A condition compares with a value or with a parameter: hide the value once a parameter is picked.
    // What is hidden is also disabled, so it is not posted: an invisible value can never be refused.
    const parameter = named(row, "parameter");
    const slot = $(row, ".col-value .value-slot");
    slot.hidden = Boolean(parameter.value);
    $$(slot, "input, select").forEach((input) => { input.disabled = slot.hidden || !needsValue; });
    parameter.disabled = !needsValue;
  }

  function refreshCondition(row) {
    refreshFieldOptions(row);
    refreshOperator(row);
    refreshValue(row);
  }

  // -- parameters ---------------------------------------------------------------------------
  function parameterRows() { return $$(document, "#parameters-table tbody tr.param-row"); }
  function liveParameters() {
    return parameterRows()
      .filter((r) => !isDeleted(r) && named(r, "name").value)
      .map((r) => ({ row: r, name: named(r, "name").value, label: named(r, "label").value.trim() || named(r, "name").value }));
  }

  /* The name a label gives (the same as rules.admin.forms.parameter_name). */
  function nameFromLabel(label) {
    let name = label.normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
    if (/^[0-9]/.test(name)) name = `p_${name}`;
    return name.slice(0, 60).replace(/_+$/, "");
  }

  /* The key a new rule's name gives (the same as rules.admin.forms.key_from_name). */
  function keyFromName(name) {
    return name.normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "").slice(0, 70).replace(/-+$/, "");
  }

  function uniqueName(base, row) {
    if (!base) return "";
    const taken = new Set(liveParameters().filter((p) => p.row !== row).map((p) => p.name));
    let name = base;
    for (let n = 2; taken.has(name); n += 1) name = `${base}_${n}`;
    return name;
  }

  /* A parameter's chip follows its label in the message and the summary (unless the old chip is a
   * field's, which stays as it is). */
  function relabelParameter(row) {
    const label = named(row, "label").value.trim();
    const old = row.dataset.label || "";
    row.dataset.label = label;
    if (!old || !label || old === label || fieldLabels().has(old)) return;
    ["message", "summary"].forEach((field) => {
      const box = form.elements[field];
      if (box && box.value.includes(`[${old}]`)) box.value = box.value.split(`[${old}]`).join(`[${chipOfParameter(label)}]`);
    });
  }

  /* Give a parameter a new name and follow it in the conditions that use it. */
  function renameParameter(row, name) {
    const input = named(row, "name");
    input.value = name;
    if (!name) return; // an emptied label: the next one renames from the last name
    const old = row.dataset.name || "";
    row.dataset.name = name;
    if (!old || old === name) return;
    conditionRows().forEach((r) => {
      const select = named(r, "parameter");
      if (select.value === old) { select.appendChild(el("option", { value: name }, name)); select.value = name; }
    });
  }

  function refreshParameterChoices() {
    const parameters = liveParameters().sort((a, b) => a.label.localeCompare(b.label));
    conditionRows().forEach((row) => {
      const select = named(row, "parameter");
      const current = select.value;
      select.replaceChildren(el("option", { value: "" }, "— or a parameter —"));
      parameters.forEach((p) => select.appendChild(el("option", { value: p.name }, p.label)));
      if (current && !parameters.some((p) => p.name === current)) select.appendChild(el("option", { value: current }, current));
      select.value = current;
    });
  }

  function refreshParameter(row) {
    const kind = named(row, "kind").value;
    replaceValue(row, kind, { name: "", unit: "", choices: [], min: null, max: null }, "eq");
    $(row, ".param-unit-display").textContent = unitText(named(row, "unit").value);
  }

  // -- checking numbers as they are typed ------------------------------------------------------
  /* The first problem of a typed number: not a number, not whole, or outside one of the ranges. */
  function numberProblem(input, kind, ranges) {
    const raw = input.value.trim();
    if (input.validity && input.validity.badInput) return kind === "integer" ? messages.integer : messages.number;
    if (raw === "") return "";
    const value = Number(raw);
    if (!Number.isFinite(value)) return kind === "integer" ? messages.integer : messages.number;
    if (kind === "integer" && !Number.isInteger(value)) return messages.integer;
    for (const [low, high] of ranges) {
      const hasLow = low !== null && low !== undefined;
      const hasHigh = high !== null && high !== undefined;
      if ((hasLow && value < low) || (hasHigh && value > high)) {
        const template = hasLow && hasHigh ? messages.outside : hasLow && value < low ? messages.below : messages.above;
        return format(template, { value: raw, low: numberText(low), high: numberText(high) });
      }
    }
    return "";
  }

  /* Show (or clear) a problem next to a field. A server refusal shown with the page stays until
   * the clinician changes the field: then the live check takes over. */
  function showProblem(box, input, problem, typed) {
    if (!box) return;
    const holder = box.parentElement;
    const serverErrors = $$(holder, ":scope > .errorlist");
    if (typed) serverErrors.forEach((list) => { list.hidden = true; });
    const serverShown = serverErrors.some((list) => !list.hidden);
    box.textContent = serverShown ? "" : problem;
    box.hidden = serverShown || !problem;
    if (input && problem) input.setAttribute("aria-invalid", "true");
    else if (input) input.removeAttribute("aria-invalid");
  }

  function checkCondition(row, typed = false) {
    const input = named(row, "value");
    const field = fieldOf(row);
    const operator = named(row, "operator").value;
    const numeric = field && (field.kind === "number" || field.kind === "integer") && !["in", "not_in"].includes(operator);
    const problem = input && numeric && !named(row, "parameter").value ? numberProblem(input, field.kind, [[field.min, field.max]]) : "";
    showProblem($(row, ".col-value .rules-value-check"), input, problem, typed);
  }

  /* A parameter's value must fit the range of every field a condition compares with it. */
  function checkParameter(row, typed = false) {
    const input = named(row, "value");
    const kind = named(row, "kind").value;
    const name = named(row, "name").value;
    let problem = "";
    if (input && (kind === "number" || kind === "integer") && !isDeleted(row)) {
      const ranges = conditionRows()
        .filter((r) => !isDeleted(r) && name && named(r, "parameter").value === name)
        .map(fieldOf)
        .filter((f) => f && (f.kind === "number" || f.kind === "integer"))
        .map((f) => [f.min, f.max]);
      problem = numberProblem(input, kind, ranges);
    }
    showProblem($(row, ".col-value .rules-value-check"), input, problem, typed);
  }

  /* Count, window, cooldown and priority: their own bounds (the window's and cooldown's in their unit). */
  function amountRanges(name) {
    const limits = catalog.limits;
    if (name === "count") return ["integer", [pattern() === "days" ? limits.days : limits.count]];
    if (name === "priority") return ["integer", [limits.priority]];
    if (name === "display_days") return ["integer", [limits.display_days]];
    if (name === "window") {
      const perUnit = form.elements.window_unit && form.elements.window_unit.value === "days" ? 24 : 1;
      return ["number", [[null, limits.window_hours[1] / perUnit]]];
    }
    if (name === "cooldown") {
      const perUnit = form.elements.cooldown_unit && form.elements.cooldown_unit.value === "weeks" ? 7 : 1;
      return ["integer", [[0, Math.floor(limits.cooldown_days[1] / perUnit)]]];
    }
    return null;
  }

  function checkAmount(name, typed = false) {
    const input = form.elements[name];
    const spec = amountRanges(name);
    if (!input || !spec) return;
    const row = input.closest(".form-row");
    let box = $(row, ":scope > .rules-value-check");
    if (!box) {
      box = el("div", { class: "rules-value-check", "aria-live": "polite", id: `${name}-check` });
      box.hidden = true;
      row.insertBefore(box, $(row, ":scope > .flex-container"));
    }
    showProblem(box, input, numberProblem(input, spec[0], spec[1]), typed);
  }
  const AMOUNTS = ["count", "window", "cooldown", "priority", "display_days"];

  function checkAll() {
    conditionRows().forEach((row) => checkCondition(row));
    parameterRows().forEach((row) => checkParameter(row));
    AMOUNTS.forEach((name) => checkAmount(name));
  }

  // -- pattern ------------------------------------------------------------------------------
  function refreshPattern() {
    const value = pattern();
    $$(document, ".pattern-only").forEach((node) => { node.hidden = value === "single"; });
    $$(document, ".sequence-only").forEach((node) => { node.hidden = value !== "sequence"; });
    const count = $(document, ".field-count");
    if (count) {
      count.hidden = !(value in catalog.count_labels);
      const label = $(count, "label");
      if (label && value in catalog.count_labels) label.textContent = `${catalog.count_labels[value]}:`;
    }
    const window = $(document, ".field-window");
    if (window) window.hidden = value === "days";
    const help = document.getElementById("rules-pattern-help");
    const chosen = catalog.patterns.find((p) => p.code === value);
    if (help) help.textContent = chosen ? chosen.help : "";
  }

  // -- adding events, blocks, conditions and parameters ----------------------------------------
  function fromTemplate(id, prefix) {
    const holder = document.createElement("tbody");
    let html = document.getElementById(id).innerHTML;
    if (prefix) {
      const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
      html = html.replace(/__prefix__/g, total.value);
      total.value = String(parseInt(total.value, 10) + 1);
    }
    const wrapper = id === "conditions-empty" || id === "parameters-empty" ? holder : document.createElement("div");
    wrapper.innerHTML = html.trim();
    return wrapper.firstElementChild;
  }

  function addCondition(block) {
    const row = fromTemplate("conditions-empty", "conditions");
    named(row, "group").value = block.dataset.group;
    $(block, "tbody").appendChild(row);
    refreshStructure();
    refreshCondition(row);
    refreshParameterChoices();
    named(row, "field").focus();
    return row;
  }

  function addBlock(section) {
    const block = fromTemplate("block-empty");
    const groups = $$(section, ".rules-block").map((b) => parseInt(b.dataset.group, 10) || 0);
    block.dataset.group = String(Math.max(0, ...groups) + 1);
    $(section, ".rules-blocks").appendChild(block);
    return addCondition(block);
  }

  function addEvent() {
    const section = fromTemplate("event-empty", "steps");
    eventsBox.appendChild(section);
    refreshPattern();
    addBlock(section);
    named(section, "fact_type").focus();
  }

  function addParameter() {
    const row = fromTemplate("parameters-empty", "parameters");
    $(document, "#parameters-table tbody").appendChild(row);
    row.dataset.auto = "1";
    refreshParameter(row);
    named(row, "label").focus();
  }

  // -- "insert a value" ---------------------------------------------------------------------
  const insertBox = document.getElementById("rules-insert");
  const insertGroups = document.getElementById("rules-insert-groups");
  const insertTarget = document.getElementById("rules-insert-target");
  let target = "message";

  /* One row of buttons; a long one (the figures from the history) folds away under its title. */
  function insertGroup(title, values, folded = false) {
    if (!values.length) return null;
    const group = el(folded ? "details" : "div", { class: "rules-insert-group" });
    group.appendChild(folded ? el("summary", {}, `${title} (${values.length})`) : el("span", { class: "rules-insert-title" }, title + ":"));
    values.forEach(({ name, label, chip }) => {
      group.appendChild(el("button", {
        type: "button", class: "button rules-insert-value", "data-chip": chip || label, title: `Inserts [${chip || label}]`,
      }, label));
    });
    return group;
  }

  function rebuildInsert() {
    if (!insertBox || !editable) return;
    const groups = [];
    const seen = new Set();
    const derived = [];
    liveEvents().forEach((section) => {
      const ft = factTypeOf(section);
      if (!ft || seen.has(ft.name)) return;
      seen.add(ft.name);
      const label = (f) => f.label + (f.unit ? ` (${unitText(f.unit)})` : "");
      groups.push(insertGroup(`The ${ft.label.toLowerCase()}`, ft.fields.filter((f) => !f.derived).map((f) => ({ name: f.name, label: label(f), chip: f.label }))));
      ft.fields.filter((f) => f.derived && !f.state && !derived.some((d) => d.name === f.name))
        .forEach((f) => derived.push({ name: f.name, label: label(f), chip: f.label }));
    });
    groups.push(insertGroup(catalog.derived_label, derived, true));
    groups.push(insertGroup("Parameters", liveParameters().map((p) => ({ name: p.name, label: p.label, chip: chipOfParameter(p.label) }))));
    groups.push(insertGroup("This rule", catalog.settings.filter((s) => s.patterns.includes(pattern()))));
    const open = $(insertGroups, "details[open]") !== null;
    insertGroups.replaceChildren(...groups.filter(Boolean));
    const details = $(insertGroups, "details");
    if (details && open) details.open = true;
    insertBox.hidden = false;
  }

  /* The labels of the events' fields: a parameter labelled like one of them says what it is. */
  function fieldLabels() {
    const labels = new Set();
    liveEvents().forEach((s) => { const ft = factTypeOf(s); if (ft) ft.fields.forEach((f) => labels.add(f.label)); });
    return labels;
  }
  function chipOfParameter(label) { return fieldLabels().has(label) ? `${label} (parameter)` : label; }

  function insertChip(chip) {
    const box = form.elements[target];
    if (!box) return;
    const text = `[${chip}]`;
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? start;
    box.setRangeText(text, start, end, "end");
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  ["message", "summary"].forEach((name) => {
    const box = form.elements[name];
    if (box) box.addEventListener("focus", () => { target = name; if (insertTarget) insertTarget.textContent = name; });
  });

  // -- the sentence and the previews ----------------------------------------------------------
  const sentence = document.getElementById("rule-sentence");
  const previews = { message_segments: document.getElementById("message-preview"), summary_segments: document.getElementById("summary-preview") };
  /* A preview: the example's text, each inserted value a chip titled with its label. */
  function showSegments(node, segments) {
    node.replaceChildren(...segments.map(([text, label]) => (label ? el("span", { class: "rules-chip", title: label }, text) : document.createTextNode(text))));
  }
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
        if (mine !== sequence) return;
        sentence.textContent = body.sentence;
        sentence.classList.add("updated");
        setTimeout(() => sentence.classList.remove("updated"), 400);
        for (const [key, node] of Object.entries(previews)) if (node && key in body) showSegments(node, body[key]);
      } catch (err) { /* keep the last sentence */ }
    }, 250);
  }

  // -- the summary's length -----------------------------------------------------------------
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

  // -- wiring -------------------------------------------------------------------------------
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("rules-add-alternative")) addCondition(button.closest(".rules-block"));
    else if (button.classList.contains("rules-add-block")) addBlock(eventOf(button));
    else if (button.id === "rules-add-event") addEvent();
    else if (button.id === "rules-add-parameter") addParameter();
    else if (button.classList.contains("rules-edit-key")) {
      const input = form.elements.key;
      const made = document.getElementById("rule-key-made");
      input.value = keyFromName(form.elements.name.value);
      input.closest(".rules-key-typed").hidden = false;
      made.hidden = true;
      button.hidden = true;
      input.focus();
      input.select();
    } else if (button.classList.contains("rules-insert-value")) insertChip(button.dataset.chip);
    else return;
    rebuildInsert();
    updateSentence();
  });

  form.addEventListener("change", (event) => {
    const name = event.target.name || "";
    const row = event.target.closest("tr.cond-row, tr.param-row");
    if (/^steps-\d+-fact_type$/.test(name)) {
      conditionRows(eventOf(event.target)).forEach(refreshCondition);
      refreshParameterChoices();
      rebuildInsert();
      checkAll();
    } else if (/^steps-\d+-DELETE$/.test(name)) {
      refreshStructure();
      rebuildInsert();
      parameterRows().forEach((r) => checkParameter(r));
    } else if (/^conditions-\d+-field$/.test(name)) {
      refreshOperator(row); refreshValue(row); checkCondition(row, true);
      parameterRows().forEach((r) => checkParameter(r));
    } else if (/^conditions-\d+-(operator|parameter)$/.test(name)) {
      refreshValue(row); checkCondition(row, true);
      parameterRows().forEach((r) => checkParameter(r));
    } else if (/^conditions-\d+-DELETE$/.test(name)) {
      refreshStructure();
      parameterRows().forEach((r) => checkParameter(r));
    } else if (/^parameters-\d+-(kind|unit)$/.test(name)) {
      refreshParameter(row); checkParameter(row, true);
    } else if (/^parameters-\d+-DELETE$/.test(name)) {
      refreshParameterChoices(); rebuildInsert();
    } else if (/^parameters-\d+-name$/.test(name)) {
      renameParameter(row, event.target.value.trim());
      refreshParameterChoices(); rebuildInsert();
    } else if (name === "pattern") {
      refreshPattern(); refreshStructure(); rebuildInsert();
    } else if (name === "window_unit" || name === "cooldown_unit") {
      checkAmount(name.replace("_unit", ""), true);
    }
    updateSentence();
  });

  form.addEventListener("input", (event) => {
    const name = event.target.name || "";
    const row = event.target.closest("tr.cond-row, tr.param-row");
    if (/^parameters-\d+-label$/.test(name)) {
      if (row.dataset.auto === "1") renameParameter(row, uniqueName(nameFromLabel(event.target.value), row));
      relabelParameter(row);
      refreshParameterChoices();
      rebuildInsert();
    } else if (name === "name" && document.getElementById("rule-key-made")) {
      document.getElementById("rule-key-made").textContent = keyFromName(event.target.value) || "made from the name";
    } else if (/^conditions-\d+-value$/.test(name)) {
      checkCondition(row, true);
    } else if (/^parameters-\d+-value$/.test(name)) {
      checkParameter(row, true);
    } else if (AMOUNTS.includes(name)) {
      checkAmount(name, true);
    } else if (name === "summary") {
      countSummary();
    }
    updateSentence();
  });

  parameterRows().forEach((row) => {
    row.dataset.name = named(row, "name").value;
    row.dataset.label = named(row, "label").value.trim();
    if (!named(row, "name").value) row.dataset.auto = "1";
  });
  refreshPattern();
  refreshStructure();
  parameterRows().forEach(refreshParameter);
  refreshParameterChoices();
  conditionRows().forEach(refreshCondition);
  rebuildInsert();
  checkAll();
  countSummary();
  // Whatever was typed before this script ran shows in the sentence too; then tell the page (and
  // the browser tests) that the editor is live.
  if (typedEarly) updateSentence();
  form.dataset.ready = "1";
})();
