"use strict";
// Participant page: consent, then one video at a time from /api/next, ratings to /api/rate.
(function () {
  const $ = (id) => document.getElementById(id);
  const mustWatch = document.body.dataset.watch === "1";
  let current = null;

  function show(section) {
    for (const id of ["consent", "rate", "done"]) $(id).hidden = id !== section;
  }

  async function call(url, body) {
    const opts = body === undefined ? {} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    };
    opts.credentials = "same-origin";
    const resp = await fetch(url, opts);
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {error: "unexpected answer from the server"}; }
    return {status: resp.status, data: data};
  }

  async function loadNext() {
    const r = await call("/api/next");
    if (r.status !== 200) { $("message").textContent = r.data.error || "server error"; return; }
    const d = r.data;
    if (d.consent_needed) { show("consent"); return; }
    if (d.done) {
      $("done-text").textContent = "You rated all " + d.total + " videos. Participant number: " + d.participant + ".";
      show("done");
      return;
    }
    current = d;
    $("position").textContent = "Video " + (d.position + 1) + " of " + d.total;
    $("bar").style.width = (100 * d.position / d.total).toFixed(1) + "%";
    $("form").reset();
    $("message").textContent = "";
    if (d.check !== null) {
      $("check").textContent = "Attention check: for this video, please answer " + d.check + " to all three questions.";
      $("check").hidden = false;
    } else {
      $("check").hidden = true;
    }
    $("submit").disabled = mustWatch;
    $("watch-hint").hidden = !mustWatch;
    const video = $("video");
    video.src = d.video;
    video.load();
    const p = video.play();
    if (p && p.catch) p.catch(() => {});  // autoplay with sound may be blocked: the participant presses play
    show("rate");
  }

  $("video").addEventListener("ended", () => {
    $("submit").disabled = false;
    $("watch-hint").hidden = true;
  });
  $("video").addEventListener("error", () => {
    $("message").textContent = "This video cannot be played; please tell the study's organiser.";
  });

  $("agree").addEventListener("change", () => { $("start").disabled = !$("agree").checked; });
  $("start").addEventListener("click", async () => {
    const r = await call("/api/consent", {consent: true});
    if (r.status !== 200) { $("message").textContent = r.data.error || "server error"; return; }
    loadNext();
  });

  $("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current) return;
    const body = {item: current.item, ticket: current.ticket};
    for (const fs of document.querySelectorAll("fieldset[data-criterion]")) {
      const key = fs.dataset.criterion;
      const checked = fs.querySelector("input:checked");
      if (!checked) { $("message").textContent = "Please answer all three questions."; return; }
      body[key] = parseInt(checked.value, 10);
    }
    $("submit").disabled = true;
    const r = await call("/api/rate", body);
    if (r.status === 200 || r.status === 409) {  // 409: already stored (e.g. from another tab): move on
      loadNext();
    } else {
      $("message").textContent = r.data.error || "server error";
      $("submit").disabled = false;
    }
  });

  loadNext();
})();
