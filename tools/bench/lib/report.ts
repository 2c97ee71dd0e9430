// Renders benchmark rows: the machine-readable JSON document, the markdown table and a hand-written SVG chart.
import { cpus, loadavg, platform, release, totalmem } from "node:os";
import type { BenchRow } from "../row.js";

/** A row as the runner keeps it: a latency row may carry the baseline's percentiles; a failed module gives a failed row. */
export interface ReportRow extends BenchRow {
  readonly baselineP50?: number;
  readonly baselineP99?: number;
  readonly baselineP999?: number;
  /** The module threw: `note` holds the error. */
  readonly failed?: boolean;
}

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly os: string;
  readonly memoryGiB: number;
  /** 1-minute load average at start and end: a busy shared machine shows here. */
  readonly loadAvgStart: number;
  loadAvgEnd?: number;
}

export interface BenchReport {
  readonly machine: MachineInfo;
  readonly date: string;
  readonly quick: boolean;
  readonly durationSec: number;
  readonly notes: readonly string[];
  readonly rows: readonly ReportRow[];
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cores: c.length,
    cpuModel: c[0]?.model.trim() ?? "unknown",
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAvgStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** A figure with sensible precision: 6 812, 48.3, 3.12, 0.042. */
export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a >= 10_000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return "0";
  return v.toPrecision(2);
}

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

function metCell(r: ReportRow): string {
  if (r.failed) return "**FAILED**";
  if (r.met === undefined) return r.budget ? "n/a" : "—";
  return r.met ? "yes" : "**no**";
}

function percentilesCell(r: ReportRow): string {
  if (r.p50 === undefined && r.p99 === undefined) return "—";
  const ours = `${fmt(r.p50)} / ${fmt(r.p99)}`;
  return r.baselineP50 !== undefined || r.baselineP99 !== undefined ? `${ours} (baseline ${fmt(r.baselineP50)} / ${fmt(r.baselineP99)})` : ours;
}

const HEADER = ["Area", "What was measured", "Ours", "Baseline (same run)", "Ratio", "p50 / p99 ms", "Budget", "Met?", "Note"];

/** The results table in GitHub markdown, preceded by the machine line. */
export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `# meshward benchmarks${report.quick ? " (quick)" : ""}`,
    "",
    `${report.date} · ${m.cores} × ${m.cpuModel} · Node ${m.node} · ${m.os} · load ${m.loadAvgStart}→${m.loadAvgEnd ?? "?"} · ${report.durationSec.toFixed(0)} s`,
    "",
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map(() => "---").join("|")}|`,
  ];
  for (const r of report.rows) {
    const baseline = r.baseline === undefined ? "—" : `${fmt(r.baseline)} ${r.unit}${r.baselineName ? ` (${r.baselineName})` : ""}`;
    lines.push(`| ${[
      r.area,
      r.name,
      r.failed ? "—" : `${fmt(r.ours)} ${r.unit}`,
      baseline,
      r.ratio === undefined ? "—" : `${fmt(r.ratio)}×`,
      percentilesCell(r),
      r.budget ?? "—",
      metCell(r),
      r.note ?? "",
    ].map(cell).join(" | ")} |`);
  }
  if (report.notes.length) lines.push("", ...report.notes.map((n) => `- ${n}`));
  return lines.join("\n") + "\n";
}

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** A row the chart draws as latency bars: it has percentiles. */
export function isLatencyRow(r: ReportRow): boolean {
  return !r.failed && r.p50 !== undefined && r.p99 !== undefined && Number.isFinite(r.p50) && Number.isFinite(r.p99);
}

/** A row the chart draws as a ratio bar: a throughput figure (unit per second) with a ratio to its baseline. */
export function isThroughputRow(r: ReportRow): boolean {
  return !r.failed && /\/s$/.test(r.unit) && r.ratio !== undefined && Number.isFinite(r.ratio);
}

const W = 960;
const LABEL_W = 330;
const BAR_H = 14;

/** A self-contained SVG: p50/p99 per latency scenario (ours beside the baseline), then throughput ratio bars. */
export function renderSvg(report: BenchReport): string {
  const out: string[] = [];
  let y = 30;
  out.push(`<text x="10" y="20" font-size="15" font-weight="bold">meshward benchmarks${report.quick ? " (quick)" : ""} — ${esc(report.date)} — ${report.machine.cores} cores, Node ${esc(report.machine.node)}</text>`);

  const lat = report.rows.filter(isLatencyRow);
  if (lat.length) {
    y += 20;
    out.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Latency (ms, p50 and p99): ours beside the baseline measured in the same run (scale per scenario)</text>`);
    y += 10;
    for (const r of lat) {
      const max = Math.max(r.p99!, r.baselineP99 ?? 0, r.p50!, r.baselineP50 ?? 0);
      const scale = (W - LABEL_W - 90) / (max || 1);
      y += 18;
      out.push(`<text x="10" y="${y}" font-size="12" font-weight="bold">${esc(`${r.area}: ${r.name}`)}</text>`);
      const bars: Array<[string, number | undefined, string]> = [
        ["ours p50", r.p50, "#63b3ed"],
        ["ours p99", r.p99, "#2b6cb0"],
        [`${r.baselineName ?? "baseline"} p50`, r.baselineP50, "#cbd5e0"],
        [`${r.baselineName ?? "baseline"} p99`, r.baselineP99, "#718096"],
      ];
      for (const [label, v, color] of bars) {
        if (v === undefined || !Number.isFinite(v)) continue;
        y += 4;
        const w = Math.max(1, v * scale);
        out.push(`<text x="${LABEL_W - 6}" y="${y + BAR_H - 3}" font-size="11" text-anchor="end">${esc(label)}</text>`);
        out.push(`<rect class="bar latency" x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>`);
        out.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + BAR_H - 3}" font-size="11">${esc(fmt(v))} ms</text>`);
        y += BAR_H;
      }
    }
    y += 10;
  }

  const thr = report.rows.filter(isThroughputRow);
  if (thr.length) {
    const maxRatio = Math.max(1.2, ...thr.map((r) => r.ratio!));
    const scale = (W - LABEL_W - 200) / maxRatio;
    y += 24;
    out.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Throughput: ours relative to the baseline (ratio; the line marks 1.0)</text>`);
    const top = y + 8;
    for (const r of thr) {
      y += 8;
      const w = Math.max(1, r.ratio! * scale);
      const color = r.met === false ? "#e53e3e" : "#38a169";
      out.push(`<text x="${LABEL_W - 6}" y="${y + BAR_H - 3}" font-size="11" text-anchor="end">${esc(`${r.area}: ${r.name}`)}</text>`);
      out.push(`<rect class="bar ratio" x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>`);
      out.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + BAR_H - 3}" font-size="11">${esc(`${fmt(r.ratio)}× (${fmt(r.ours)} vs ${fmt(r.baseline)} ${r.unit})${r.budget ? `, budget ${r.budget}` : ""}`)}</text>`);
      y += BAR_H;
    }
    const x1 = (LABEL_W + scale).toFixed(1);
    out.push(`<line x1="${x1}" y1="${top}" x2="${x1}" y2="${y + 4}" stroke="#1a202c" stroke-dasharray="3,2"/>`);
    y += 10;
  }
  if (!lat.length && !thr.length) {
    y += 24;
    out.push(`<text x="10" y="${y}" font-size="12">No latency or throughput rows in this run.</text>`);
  }
  const h = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">`,
    `<rect width="${W}" height="${h}" fill="#ffffff"/>`,
    ...out,
    "</svg>",
    "",
  ].join("\n");
}

/** JSON with non-finite numbers as null. */
export function renderJson(report: BenchReport): string {
  return JSON.stringify(report, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n";
}
