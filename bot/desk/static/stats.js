// Draws the statistics page's charts from the figures the server embedded as JSON.
"use strict";
(function () {
  var holder = document.getElementById("chart-data");
  if (!holder || !window.echarts) return;
  var data = JSON.parse(holder.textContent);
  var measures = data.measures;
  var colours = ["#b71c1c", "#6a1b9a", "#0b5cad", "#1d7a3a", "#00838f", "#b26a00"];

  function series(values, type) {
    return measures.map(function (m, i) {
      return {
        name: data.labels[m], type: type, data: values[m], connectNulls: false,
        itemStyle: { color: colours[i % colours.length] },
        lineStyle: { color: colours[i % colours.length] }
      };
    });
  }

  function draw(id, categories, values, type) {
    var node = document.getElementById(id);
    if (!node) return;
    var chart = window.echarts.init(node, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v == null ? "—" : v + "%"; } },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 8, top: 48, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: categories, axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: series(values, type)
    });
    window.addEventListener("resize", function () { chart.resize(); });
    node.setAttribute("data-drawn", "true");
  }

  draw("chart-weeks", data.weeks, data.by_week, "line");
  draw("chart-departments", data.departments, data.by_department, "bar");
})();
