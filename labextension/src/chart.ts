/**
 * A metric chart of several runs with uPlot (canvas: 10 runs x 2k points draw in a few ms).
 * Loaded on first use by the experiment view. Live points, smoothing and a new run selection
 * update the data of the one uPlot instance; only the log-scale toggle and a change of the set of
 * series build a new one.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { alignSeries, colorAt, emaSmooth, formatNumber, ISeries } from './experimentsFormat';

/** A line of the chart: a run's metric, or a group's mean with its min/max band. */
export interface IChartLine {
  id: string;
  label: string;
  series: ISeries;
  /** a band around the line (runs/aggregate's min and max at the same steps) */
  band?: { min: (number | null)[]; max: (number | null)[] };
}

function cssVar(name: string, fallback: string): string {
  const value = getComputedStyle(document.body).getPropertyValue(name).trim();
  return value || fallback;
}

function withAlpha(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

export class MetricChart {
  constructor(host: HTMLElement) {
    this._host = host;
    // JupyterLab names the theme on the body when it switches: the axes follow its colours
    this._themeWatch = new MutationObserver(() => this._restyle(0));
    this._themeWatch.observe(document.body, {
      attributes: true,
      attributeFilter: ['data-jp-theme-name']
    });
  }

  /** Milliseconds the last full draw took (setData to the draw hook). */
  get lastDrawMs(): number {
    return this._lastDrawMs;
  }

  /** Show these lines (a new selection, metric or a group-by result). */
  setLines(lines: IChartLine[]): void {
    const shape = lines.map(l => `${l.id}:${l.band ? 'b' : 'l'}`).join(',');
    this._lines = lines;
    if (shape !== this._shape || !this._plot) {
      this._shape = shape;
      this._build();
    } else {
      this._update(true);
    }
  }

  /** Points of a line grew (live updates): redraw the same uPlot (coalesced per frame). */
  changed(): void {
    if (this._frame) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._update(!this._zoomed);
    });
  }

  setLog(log: boolean): void {
    if (log !== this._log) {
      this._log = log;
      this._build();
    }
  }

  /** EMA weight in [0, 1). */
  setSmoothing(weight: number): void {
    this._smoothing = weight;
    this._update(!this._zoomed);
  }

  resize(width: number, height: number): void {
    this._width = Math.max(200, Math.floor(width));
    this._height = Math.max(150, Math.floor(height));
    this._plot?.setSize({ width: this._width, height: this._height });
  }

  dispose(): void {
    this._themeWatch.disconnect();
    window.clearTimeout(this._restyleTimer);
    cancelAnimationFrame(this._frame);
    this._plot?.destroy();
    this._plot = null;
  }

  /** The chart's data: x, then each line (smoothed), then each band's max and min. */
  private _data(): uPlot.AlignedData {
    const clean = (values: (number | null)[]) =>
      this._log ? values.map(v => (v !== null && v > 0 ? v : null)) : values;
    const smooth = (values: (number | null)[]) => emaSmooth(values, this._smoothing);
    const series: ISeries[] = [];
    for (const line of this._lines) {
      series.push({ steps: line.series.steps, values: clean(smooth(line.series.values)) });
    }
    for (const line of this._lines) {
      if (line.band) {
        series.push({ steps: line.series.steps, values: clean(line.band.max) });
        series.push({ steps: line.series.steps, values: clean(line.band.min) });
      }
    }
    return alignSeries(series) as unknown as uPlot.AlignedData;
  }

  private _update(resetScales: boolean): void {
    if (!this._plot) {
      return;
    }
    this._started = performance.now();
    this._plot.setData(this._data(), resetScales);
    this._publish();
  }

  private _publish(): void {
    const points = this._lines.reduce((n, l) => n + l.series.steps.length, 0);
    this._host.dataset.points = String(points);
    this._host.dataset.lines = String(this._lines.length);
  }

  /** Draw again in the theme's colours once its stylesheet is in (it may lag the body's mark:
   * try for a second). */
  private _restyle(tries: number): void {
    window.clearTimeout(this._restyleTimer);
    if (!this._plot) {
      return;
    }
    if (this._axisColors() !== this._colors) {
      this._build();
    } else if (tries < 10) {
      this._restyleTimer = window.setTimeout(() => this._restyle(tries + 1), 100);
    }
  }

  private _axisColors(): string {
    return `${cssVar('--jp-ui-font-color1', '#333')}|${cssVar('--jp-border-color2', '#ddd')}`;
  }

  private _build(): void {
    this._plot?.destroy();
    this._plot = null;
    this._zoomed = false;
    this._colors = this._axisColors();
    const [text, grid] = this._colors.split('|');
    this._host.dataset.axisColor = text;
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const series: uPlot.Series[] = [{ label: 'step' }];
    const bands: uPlot.Band[] = [];
    this._lines.forEach((line, i) => {
      series.push({
        label: line.label,
        stroke: colorAt(i),
        width: 1.5,
        spanGaps: true,
        points: { show: false },
        value: (_u, v) => formatNumber(v)
      });
    });
    let next = this._lines.length + 1;
    this._lines.forEach((line, i) => {
      if (line.band) {
        const hi = next++;
        const lo = next++;
        for (const edge of ['max', 'min']) {
          series.push({
            label: `${line.label} ${edge}`,
            stroke: withAlpha(colorAt(i), 0.4),
            width: 0.5,
            spanGaps: true,
            points: { show: false },
            value: (_u, v) => formatNumber(v)
          });
        }
        bands.push({ series: [hi, lo], fill: withAlpha(colorAt(i), 0.15) });
      }
    });
    const opts: uPlot.Options = {
      width: this._width,
      height: this._height,
      series,
      bands,
      scales: { x: { time: false }, y: this._log ? { distr: 3 } : {} },
      axes: [{ ...axis }, { ...axis, size: 60 }],
      cursor: { drag: { x: true, y: false } },
      // the view's own legend names the lines (with their point counts and last values)
      legend: { show: false },
      hooks: {
        draw: [
          () => {
            if (this._started) {
              this._lastDrawMs = performance.now() - this._started;
              this._host.dataset.drawMs = this._lastDrawMs.toFixed(1);
              this._started = 0;
            }
          }
        ],
        setSelect: [
          u => {
            if (u.select.width > 0) {
              this._zoomed = true;
            }
          }
        ]
      }
    };
    this._started = performance.now();
    this._host.replaceChildren();
    this._plot = new uPlot(opts, this._data(), this._host);
    // a double click resets uPlot's zoom: live points rescale again
    this._plot.over.addEventListener('dblclick', () => {
      this._zoomed = false;
    });
    this._host.dataset.log = String(this._log);
    this._host.dataset.builds = String(++this._builds);
    this._publish();
  }

  private _host: HTMLElement;
  private _plot: uPlot | null = null;
  private _lines: IChartLine[] = [];
  private _shape = '';
  private _log = false;
  private _smoothing = 0;
  private _zoomed = false;
  private _frame = 0;
  private _width = 640;
  private _height = 300;
  private _started = 0;
  private _lastDrawMs = 0;
  private _builds = 0;
  private _colors = '';
  private _themeWatch: MutationObserver;
  private _restyleTimer = 0;
}
