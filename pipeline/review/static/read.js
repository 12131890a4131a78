/* The read form: estimate, verdict, reason, comment; saved as JSON with the session's CSRF
 * token, together with the corrected mask when the assessor changed it. On success the next
 * photo opens (its pictures were preloaded by the viewer).
 *
 * Nothing lost: every change to the form or the mask is autosaved, a moment later, as the
 * assessor's draft of this task on the server (cfg.draft; nobody else can see it), restored
 * when the task is opened again, and discarded when the read is saved. Leaving the page with
 * edits that are not saved as a read asks first (beforeunload).
 */
(function () {
  'use strict';

  const cfg = JSON.parse(document.getElementById('viewer-config').textContent);
  const $ = (id) => document.getElementById(id);
  const form = $('read-form');
  const estimate = $('estimate');
  const slider = $('estimate-slider');
  const reason = $('reason');
  const comment = $('comment');
  const error = $('form-error');
  const submitButton = $('submit');
  const csrf = document.querySelector('meta[name=csrf-token]').content;
  let busy = false;

  function verdict() {
    const el = form.querySelector('input[name=verdict]:checked');
    return el ? el.value : '';
  }

  function updateReason() {
    const v = verdict();
    $('reason-row').classList.toggle('required', v === 'unassessable');
  }

  // the slider shows no thumb until there is an estimate (no anchor at 50)
  function syncSlider() {
    const empty = estimate.value === '';
    if (!empty) slider.value = estimate.value;
    slider.classList.toggle('unset', empty);
  }
  estimate.addEventListener('input', syncSlider);
  slider.addEventListener('input', () => { estimate.value = slider.value; syncSlider(); });
  form.querySelectorAll('input[name=verdict]').forEach((el) => {
    el.addEventListener('change', updateReason);
  });
  updateReason();
  syncSlider();

  // ------------------------------------------------------------------- drafts
  const draftState = $('draft-state');
  const fields = () => ({
    estimate_percent: estimate.value, verdict: verdict(), reason: reason.value,
    comment: comment.value,
  });
  const loaded = JSON.stringify(fields());
  let lastSent = null;       // the draft body last saved on the server (JSON)
  let hasDraft = false;      // whether the server holds a draft of this task
  let timer = null;
  let submitted = false;

  function dirty() {
    const v = window.reviewViewer;
    return JSON.stringify(fields()) !== loaded || Boolean(v && v.ready && v.isChanged());
  }

  function draftBody() {
    const v = window.reviewViewer;
    const body = { form: fields() };
    if (v && v.ready && v.isChanged()) body.mask_png = v.maskPNG();
    return JSON.stringify(body);
  }

  function say(text, bad) {
    draftState.textContent = text;
    draftState.classList.toggle('error', Boolean(bad));
  }

  async function saveDraft({ keepalive = false } = {}) {
    clearTimeout(timer);
    timer = null;
    if (submitted || !window.reviewViewer || !window.reviewViewer.ready) return;
    const isDirty = dirty();
    if (!isDirty && !hasDraft) return;
    const body = isDirty ? draftBody() : null;
    if (body !== null && body === lastSent) return;
    try {
      const resp = await fetch(cfg.draft, {
        method: isDirty ? 'POST' : 'DELETE', credentials: 'same-origin', keepalive,
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: body === null ? undefined : body,
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(data.error || 'the draft was not saved');
      lastSent = body;
      hasDraft = isDirty;
      form.dataset.draft = isDirty ? 'saved' : 'none';
      say(isDirty ? 'Draft saved (not yet a read).' : '');
    } catch (err) {
      say('Draft not saved: ' + err.message, true);
    }
  }

  function changed() {
    error.textContent = '';   // an old complaint goes once the form changes
    clearTimeout(timer);
    timer = setTimeout(saveDraft, 800);
  }
  form.addEventListener('input', changed);
  form.addEventListener('change', changed);
  document.addEventListener('maskchange', changed);

  async function restoreDraft() {
    try {
      const resp = await fetch(cfg.draft, { credentials: 'same-origin' });
      const data = await resp.json();
      const d = data.draft;
      if (d) {
        const f = d.form;
        estimate.value = f.estimate_percent || '';
        syncSlider();
        form.querySelectorAll('input[name=verdict]').forEach((el) => {
          el.checked = el.value === f.verdict;
        });
        reason.value = f.reason || '';
        comment.value = f.comment || '';
        updateReason();
        if (d.mask_png) await window.reviewViewer.loadMask('data:image/png;base64,' + d.mask_png);
        hasDraft = true;
        lastSent = draftBody();
        say('Your unsaved draft was restored (not yet a read).');
        $('discard-draft').hidden = false;
      }
      form.dataset.draft = d ? 'restored' : 'none';
    } catch (err) {
      say('Could not check for a draft: ' + err.message, true);
      form.dataset.draft = 'unknown';
    }
  }
  if (window.reviewViewer && window.reviewViewer.ready) restoreDraft();
  else document.addEventListener('viewerready', restoreDraft, { once: true });

  $('discard-draft').addEventListener('click', async () => {
    submitted = true;   // no autosave while the page reloads
    await fetch(cfg.draft, { method: 'DELETE', credentials: 'same-origin',
                             headers: { 'X-CSRF-Token': csrf } });
    window.location.reload();
  });

  window.addEventListener('beforeunload', (e) => {
    if (submitted || !dirty()) return;
    if (timer) saveDraft({ keepalive: true });
    e.preventDefault();
    e.returnValue = '';
  });

  function check(body) {
    if (!body.verdict) return 'Choose a verdict (A, C or U).';
    if (body.verdict !== 'unassessable') {
      const e = body.estimate_percent;
      if (e === null || !Number.isFinite(e) || e < 0 || e > 100) {
        return 'Give your estimate of % epithelialized (0 to 100).';
      }
    }
    if (body.verdict === 'unassessable' && !body.reason) return 'Choose a reason.';
    if (body.reason === 'other' && !body.comment.trim()) return 'Say why in the comment.';
    return '';
  }

  async function submit(ev) {
    if (ev) ev.preventDefault();
    const viewer = window.reviewViewer;
    if (busy || !viewer || !viewer.ready) return;
    const body = {
      estimate_percent: estimate.value === '' ? null : Number(estimate.value),
      verdict: verdict(),
      reason: reason.value || null,
      comment: comment.value,
    };
    const problem = check(body);
    error.textContent = problem;
    if (problem) return;
    if (viewer.shouldSendMask()) body.mask_png = viewer.maskPNG();
    busy = true;
    submitButton.disabled = true;
    submitButton.textContent = 'Saving…';
    try {
      const resp = await fetch(cfg.submit, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify(body),
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(data.error || 'The read was not saved.');
      submitted = true;
      clearTimeout(timer);
      window.location.assign(data.next_url);
    } catch (err) {
      error.textContent = err.message;
      busy = false;
      submitButton.disabled = false;
      submitButton.textContent = 'Save and next';
    }
  }

  form.addEventListener('submit', submit);

  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { submit(); e.preventDefault(); return; }
    const t = e.target;
    if (t.matches('input[type=number], input[type=text], textarea, select') ||
        e.ctrlKey || e.altKey || e.metaKey) return;
    const pick = { a: 'accept', c: 'needs_correction', u: 'unassessable' }[e.key.toLowerCase()];
    if (pick) {
      $('verdict-' + pick).checked = true;
      updateReason();
      changed();
      if (pick === 'unassessable') reason.focus();
      e.preventDefault();
    } else if (e.key.toLowerCase() === 'p') {
      estimate.focus();
      estimate.select();
      e.preventDefault();
    }
  });
})();
