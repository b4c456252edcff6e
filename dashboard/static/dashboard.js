// The dashboard's glue: server-sent chart frames into uPlot charts, and the traffic editor's sum.
// Drawing is uPlot's and page updates are htmx's; this file only hands data between them.
"use strict";

const PALETTE = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab"];

function colourOf(revisions, name) {
  return PALETTE[revisions.indexOf(name) % PALETTE.length];
}

function chartOptions(element, revisions) {
  return {
    width: Math.max(320, element.clientWidth || 420),
    height: 180,
    scales: { x: { time: true } },
    series: [{}].concat(revisions.map((name) => ({ label: name, stroke: colourOf(revisions, name), width: 2, spanGaps: false }))),
  };
}

function startCharts(container) {
  const status = document.getElementById("charts-status");
  const lastFrame = document.getElementById("last-frame");
  const charts = {};
  let shown = "";
  const source = new EventSource(container.dataset.stream);
  source.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    lastFrame.textContent = message.data;  // what the charts show, for tests and curious users
    status.innerHTML = "";
    const note = document.createElement("small");
    note.textContent = frame.noData || ("updated " + new Date().toLocaleTimeString());
    status.appendChild(note);
    const revisions = frame.revisions;
    const key = revisions.join(",");
    for (const element of container.querySelectorAll("[data-chart]")) {
      const name = element.dataset.chart;
      const data = [frame.t].concat(revisions.map((revision) => frame.charts[name][revision]));
      if (key !== shown || !charts[name]) {
        if (charts[name]) charts[name].destroy();
        charts[name] = new uPlot(chartOptions(element, revisions), data, element);
      } else {
        charts[name].setData(data);
      }
    }
    shown = key;
  };
  source.onerror = () => {
    status.textContent = "the chart stream was interrupted; reconnecting…";
  };
}

function sumTraffic() {
  const form = document.getElementById("traffic-editor");
  const output = document.getElementById("traffic-sum");
  if (!form || !output) return;
  let sum = 0;
  for (const input of form.querySelectorAll("[data-percent]")) sum += Number(input.value || 0);
  output.textContent = sum + "%" + (sum === 100 ? "" : " (the API server wants 100)");
}

document.addEventListener("DOMContentLoaded", () => {
  for (const container of document.querySelectorAll("[data-stream]")) startCharts(container);
  sumTraffic();
  document.addEventListener("input", (event) => {
    if (event.target.matches && event.target.matches("[data-percent]")) sumTraffic();
  });
});
