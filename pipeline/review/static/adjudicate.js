/* Adjudication page: switch the mask shown between the model's and the assessors'
 * corrections, and compare two masks: the differences in magenta on the photo, and each
 * mask's areas (cm², through the photo's calibration) with the area where they differ.
 */
(function () {
  'use strict';

  const cfg = JSON.parse(document.getElementById('viewer-config').textContent);
  const $ = (id) => document.getElementById(id);
  const select = $('mask-source');
  const compare = $('compare-with');
  if (!select) return;
  const urlOf = (v) => (!v || v === 'model') ? cfg.mask : cfg.read_masks[v];
  const nameOf = (sel) => sel.options[sel.selectedIndex].textContent.trim();
  const cm2 = (v) => (v / 100).toFixed(2);

  async function update() {
    const v = window.reviewViewer;
    if (!v) return;
    await v.loadMask(urlOf(select.value));
    const table = $('compare-areas');
    if (!compare || !compare.value) {
      v.setDiff(null);
      if (table) table.hidden = true;
      $('diff-area').textContent = '';
      document.body.dataset.compared = '';
      return;
    }
    const a = await v.labelsOf(urlOf(select.value));
    const b = await v.labelsOf(urlOf(compare.value));
    v.setDiff(b);
    const differ = new Uint8Array(a.length);
    for (let i = 0; i < a.length; i++) differ[i] = a[i] !== b[i] ? 1 : 0;
    const rows = [[nameOf(select), v.areasOf(a)], [nameOf(compare), v.areasOf(b)]];
    const body = table.querySelector('tbody');
    body.replaceChildren();
    for (const [name, ar] of rows) {
      const tr = document.createElement('tr');
      const cells = ar ? [name, cm2(ar.epithelialized_mm2), cm2(ar.raw_mm2),
                          cm2(ar.donor_site_mm2)] : [name, '—', '—', '—'];
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    table.hidden = false;
    const d = v.areasOf(differ);
    $('diff-area').textContent = d ? `They differ over ${cm2(d.epithelialized_mm2)} cm².` : '';
    document.body.dataset.compared = '1';
  }

  select.addEventListener('change', update);
  if (compare) compare.addEventListener('change', update);
})();
