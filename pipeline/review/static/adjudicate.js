/* Adjudication page: switch the mask shown between the model's and the assessors'
 * corrections. */
(function () {
  'use strict';

  const cfg = JSON.parse(document.getElementById('viewer-config').textContent);
  const select = document.getElementById('mask-source');
  if (!select) return;
  select.addEventListener('change', () => {
    const url = select.value ? cfg.read_masks[select.value] : cfg.mask;
    if (url && window.reviewViewer) window.reviewViewer.loadMask(url);
  });
})();
