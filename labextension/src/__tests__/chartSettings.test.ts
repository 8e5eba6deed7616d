import { describe, expect, it } from 'vitest';

import {
  chartSettings,
  configureCharts,
  DEFAULT_CHART_SETTINGS,
  normaliseChartSettings
} from '../chartSettings';

describe('chart settings', () => {
  it('falls back to the defaults for missing or mistyped values', () => {
    expect(normaliseChartSettings(undefined)).toEqual(DEFAULT_CHART_SETTINGS);
    expect(
      normaliseChartSettings({ chartSmoothing: 'high', chartLogScale: 1, chartMaxPoints: NaN })
    ).toEqual(DEFAULT_CHART_SETTINGS);
  });

  it('clamps numbers into their ranges', () => {
    const got = normaliseChartSettings({ chartSmoothing: 2, chartMaxPoints: 12.6 });
    expect(got.smoothing).toBe(0.99);
    expect(got.maxPoints).toBe(100);
    expect(normaliseChartSettings({ chartMaxPoints: 1e9 }).maxPoints).toBe(100000);
  });

  it('is what new charts read after the registry changes', () => {
    configureCharts({ chartSmoothing: 0.6, chartLogScale: true, chartMaxPoints: 500 });
    expect(chartSettings()).toEqual({ smoothing: 0.6, logScale: true, maxPoints: 500 });
    configureCharts({});
    expect(chartSettings()).toEqual(DEFAULT_CHART_SETTINGS);
  });
});
