/**
 * Chart options from the settings registry (Settings → Jupyter Workbench): how a new chart
 * starts (smoothing, log scale) and how many points per run it asks the server for.
 */
export interface IChartSettings {
  smoothing: number;
  logScale: boolean;
  maxPoints: number;
}

export const DEFAULT_CHART_SETTINGS: IChartSettings = { smoothing: 0, logScale: false, maxPoints: 2000 };

/** Settings as the registry gives them (any shape), made safe: numbers clamped, types checked. */
export function normaliseChartSettings(raw: Record<string, unknown> | null | undefined): IChartSettings {
  const value = raw ?? {};
  const number = (v: unknown, fallback: number, lo: number, hi: number): number =>
    typeof v === 'number' && Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
  return {
    smoothing: number(value.chartSmoothing, DEFAULT_CHART_SETTINGS.smoothing, 0, 0.99),
    logScale:
      typeof value.chartLogScale === 'boolean' ? value.chartLogScale : DEFAULT_CHART_SETTINGS.logScale,
    maxPoints: Math.round(number(value.chartMaxPoints, DEFAULT_CHART_SETTINGS.maxPoints, 100, 100000))
  };
}

let current: IChartSettings = { ...DEFAULT_CHART_SETTINGS };

/** The options new charts start with. */
export function chartSettings(): IChartSettings {
  return current;
}

/** Apply the registry's settings (called on load and whenever the user changes them). */
export function configureCharts(raw: Record<string, unknown> | null | undefined): void {
  current = normaliseChartSettings(raw);
}
