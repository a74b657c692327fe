// An ECharts chart (bar, line or funnel) drawn on a canvas, with its data as text for
// screen readers. Only the parts of ECharts used here are bundled, and only on the
// pages that draw charts.
import { BarChart, FunnelChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";
import { useEffect, useRef } from "react";

echarts.use([BarChart, LineChart, FunnelChart, GridComponent, TooltipComponent, LegendComponent, CanvasRenderer]);

export interface Series {
  name: string;
  values: number[];
}

export function Chart({
  kind,
  categories,
  series,
  format,
  label,
  rtl,
}: {
  kind: "bar" | "line" | "funnel";
  categories: string[];
  series: Series[];
  format: (v: number) => string;
  label: string;
  rtl: boolean;
}) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const chart = echarts.init(el.current, undefined, { renderer: "canvas" });
    const tooltip = { trigger: kind === "funnel" ? "item" : "axis", valueFormatter: (v: unknown) => format(Number(v)) };
    if (kind === "funnel") {
      const first = series[0]?.values ?? [];
      chart.setOption({
        animation: false,
        tooltip,
        series: [
          {
            type: "funnel",
            sort: "none",
            left: rtl ? "40%" : "5%",
            width: "55%",
            label: { formatter: (p: { name: string; value: number }) => `${p.name}: ${format(p.value)}` },
            data: categories.map((name, i) => ({ name, value: first[i] ?? 0 })),
          },
        ],
      });
    } else {
      chart.setOption({
        animation: false,
        tooltip,
        legend: series.length > 1 ? { top: 0 } : undefined,
        grid: { left: 8, right: 8, top: series.length > 1 ? 28 : 10, bottom: 4, containLabel: true },
        xAxis: {
          type: "category",
          data: categories,
          inverse: rtl,
          axisLabel: { interval: categories.length <= 8 ? 0 : "auto", rotate: categories.length > 8 ? 45 : categories.length > 4 ? 30 : 0, hideOverlap: true },
        },
        yAxis: {
          type: "value",
          position: rtl ? "right" : "left",
          axisLabel: { formatter: (v: number) => format(v) },
        },
        series: series.map((s) => ({ type: kind, name: s.name, data: s.values })),
      });
    }
    const resize = new ResizeObserver(() => chart.resize());
    resize.observe(el.current);
    return () => {
      resize.disconnect();
      chart.dispose();
    };
  }, [kind, categories, series, format, rtl]);
  return <div ref={el} className="chart" role="img" aria-label={label} />;
}
