/* The read form: estimate, verdict, reason, comment; saved as JSON with the session's CSRF
 * token, together with the corrected mask when the assessor changed it. On success the next
 * photo opens (its pictures were preloaded by the viewer).
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

  estimate.addEventListener('input', () => {
    if (estimate.value !== '') slider.value = estimate.value;
  });
  slider.addEventListener('input', () => { estimate.value = slider.value; });
  form.querySelectorAll('input[name=verdict]').forEach((el) => {
    el.addEventListener('change', updateReason);
  });
  updateReason();

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
      if (pick === 'unassessable') reason.focus();
      e.preventDefault();
    } else if (e.key.toLowerCase() === 'p') {
      estimate.focus();
      estimate.select();
      e.preventDefault();
    }
  });
})();
