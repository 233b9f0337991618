/// The app's stylesheet and script, served from the binary: nothing is fetched from elsewhere, and
/// text uses the system's fonts.
public enum Assets {
    public static let css = """
    :root { color-scheme: dark; --bg: #111418; --panel: #1b2027; --text: #e6e9ee; --muted: #9aa4b2; --accent: #ff5a3c; }
    * { box-sizing: border-box; }
    body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
    header { display: flex; align-items: center; gap: 24px; height: 44px; padding: 0 16px; background: #0b0d10; border-bottom: 1px solid #262c35; }
    header .brand { font-weight: 700; color: var(--accent); text-decoration: none; font-size: 16px; }
    header nav a { color: var(--muted); margin-right: 16px; text-decoration: none; }
    main { padding: 12px 16px 32px; }
    h1 { font-size: 18px; margin: 4px 0 8px; word-break: break-all; }
    h2 { font-size: 15px; margin: 8px 0; color: var(--muted); }
    a { color: #7cb8ff; }
    table { border-collapse: collapse; }
    th, td { padding: 4px 10px; border-bottom: 1px solid #262c35; text-align: left; vertical-align: middle; }
    td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
    .worklist { width: 100%; }
    .bar { display: inline-block; width: 80px; height: 8px; background: #2a3039; margin-left: 6px; vertical-align: middle; }
    .bar span { display: block; height: 100%; }
    .status.ok { color: #6fd18b; } .status.failed { color: #ff6b6b; } .status.warn { color: #f0c05a; }
    .filters { display: flex; gap: 16px; align-items: center; margin: 8px 0 12px; }
    .filters input { width: 80px; }
    .count, .meta { color: var(--muted); }
    .error { color: #ff6b6b; } .warning { color: #f0c05a; } .phi { color: #f0c05a; }
    .mips { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
    .mips figure { margin: 0; }
    .mip { position: relative; width: 280px; }
    .mip img { display: block; width: 280px; height: auto; image-rendering: pixelated; background: #000; }
    .marker { position: absolute; width: 22px; height: 22px; margin: -11px 0 0 -11px; border: 2px solid #35e0ff; border-radius: 50%;
              color: #35e0ff; font-size: 11px; line-height: 18px; text-align: center; font-weight: 700; }
    figcaption { color: var(--muted); font-size: 12px; }
    .panels { display: flex; gap: 16px; flex-wrap: wrap; margin-top: 12px; }
    .panel { background: var(--panel); padding: 8px 12px; border-radius: 6px; }
    .slice { width: 280px; height: auto; image-rendering: pixelated; background: #000; }
    #scroller { width: 280px; }
    .schematic { width: 400px; height: 340px; }
    .schematic .vessel { stroke: #5b6573; stroke-width: 5; stroke-linecap: round; }
    .schematic .value { fill: #fff; font-size: 11px; text-anchor: middle; font-weight: 700; }
    .schematic .label { fill: var(--muted); font-size: 10px; text-anchor: middle; }
    .schematic .side { fill: var(--muted); font-size: 14px; font-weight: 700; }
    .empty { color: var(--muted); }
    """

    public static let js = """
    "use strict";
    // Slice scroller: swap the slice image as the range moves (arrow keys work on the range too).
    function setUpScroller() {
      const range = document.getElementById("scroller"), image = document.getElementById("slice");
      const label = document.getElementById("slice-number");
      if (!range || !image) return;
      range.addEventListener("input", () => {
        image.src = image.dataset.base + range.value + ".png";
        label.textContent = (Number(range.value) + 1) + " / " + (Number(range.max) + 1);
      });
    }
    // Job page: follow the job through the API, then open its result.
    function followJob() {
      const element = document.getElementById("job");
      if (!element) return;
      const status = element.dataset.status;
      if (status !== "queued" && status !== "running") return;
      const state = document.getElementById("job-state"), bar = document.getElementById("job-progress");
      const poll = async () => {
        const response = await fetch("/api/jobs/" + element.dataset.job, { credentials: "same-origin" });
        if (!response.ok) { state.textContent = "unknown job"; return; }
        const job = await response.json();
        element.dataset.status = job.status;
        if (job.status === "queued") { state.textContent = "queued (" + job.position + " ahead)"; bar.value = 1; }
        else if (job.status === "running") { state.textContent = "predicting…"; bar.value = 2; }
        else if (job.status === "done" && job.resultKey) { bar.value = 3; window.location.href = "/series/" + job.resultKey; return; }
        else { bar.value = 3; state.textContent = "failed: " + (job.error || "unknown error"); return; }
        setTimeout(poll, 1000);
      };
      setTimeout(poll, 500);
    }
    // For tests and for people: record whether every image on the page decoded.
    function checkImages() {
      const images = Array.from(document.images);
      const decoded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
      document.documentElement.dataset.images = decoded + "/" + images.length;
    }
    document.addEventListener("DOMContentLoaded", () => { setUpScroller(); followJob(); });
    window.addEventListener("load", checkImages);
    """
}
