/**
 * Runs side by side in the main area: the params that differ, the metrics (last, min, max) and
 * a parallel-coordinates plot (a small SVG: a line per run across the differing params and the
 * metrics' last values). Loaded on first use (see index.ts).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { compareRuns, ICompare, messageOf } from './api';
import { colorAt, formatNumber, parallelAxes, paramRows } from './experimentsFormat';
import { h } from './dom';

const SVG = 'http://www.w3.org/2000/svg';

function s(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** Axes the plot draws at most. */
const MAX_AXES = 10;

export class CompareView extends Widget {
  constructor(
    readonly runIds: string[],
    trans: TranslationBundle
  ) {
    super();
    this._trans = trans;
    this.addClass('jp-WorkbenchCompare');
    this.title.label = trans.__('Compare %1 runs', runIds.length);
    this.title.caption = trans.__('Runs %1', runIds.map(id => id.slice(0, 8)).join(', '));
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', this.title.label);
    const refresh = h(
      'button',
      {
        class: 'jp-WorkbenchPanel-refresh jp-mod-styled',
        type: 'button',
        title: trans.__('Reload the comparison'),
        'aria-label': trans.__('Reload the comparison')
      },
      '⟳'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this._error = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
    this._error.hidden = true;
    this._content = h('div', { class: 'jp-WorkbenchCompare-content' });
    this.node.append(
      h(
        'header',
        {},
        h('div', { class: 'jp-WorkbenchPanel-header' }, h('h2', {}, this.title.label), refresh),
        this._error
      ),
      this._content
    );
  }

  async refresh(): Promise<void> {
    this._error.hidden = true;
    this.node.setAttribute('aria-busy', 'true');
    try {
      const data = await compareRuns(this.runIds);
      this._render(data);
    } catch (error) {
      this._error.textContent = messageOf(error);
      this._error.hidden = false;
    } finally {
      this.node.setAttribute('aria-busy', 'false');
      this.node.dataset.loaded = 'true';
    }
  }

  protected onAfterAttach(): void {
    if (this.node.dataset.loaded !== 'true') {
      void this.refresh();
    }
  }

  private _render(data: ICompare): void {
    const trans = this._trans;
    const ids = data.runs.map(r => r.run_id);
    const names = data.runs.map(r => r.name || r.run_id.slice(0, 8));
    const runHeader = () =>
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, ''),
        ...names.map((name, i) =>
          h(
            'th',
            { scope: 'col', 'data-run-id': ids[i], title: `${data.runs[i].experiment} · ${data.runs[i].status}` },
            h('span', { class: 'jp-WorkbenchExperiment-swatch', style: `background: ${colorAt(i)}` }),
            name
          )
        )
      );

    // params: those that differ first, highlighted
    const rows = paramRows(ids, data.params);
    const differing = rows.filter(r => r.differs);
    const params = h(
      'table',
      { class: 'jp-WorkbenchCompare-params', 'aria-label': trans.__('Params') },
      h('thead', {}, runHeader()),
      h(
        'tbody',
        {},
        ...rows.map(row =>
          h(
            'tr',
            { class: row.differs ? 'jp-mod-differs' : '', 'data-param': row.key },
            h('th', { scope: 'row' }, row.key),
            ...row.values.map(v => h('td', {}, v ?? '—'))
          )
        )
      )
    );
    const paramsNote = h(
      'p',
      { class: 'jp-WorkbenchCompare-note' },
      differing.length
        ? trans._n('%1 param differs (highlighted).', '%1 params differ (highlighted).', differing.length)
        : trans.__('All params are the same.')
    );

    // metrics: last, min, max of each run
    const metricKeys = Object.keys(data.metrics).sort();
    const metrics = h(
      'table',
      { class: 'jp-WorkbenchCompare-metrics', 'aria-label': trans.__('Metrics') },
      h('thead', {}, runHeader()),
      h(
        'tbody',
        {},
        ...metricKeys.map(key =>
          h(
            'tr',
            { 'data-metric': key },
            h('th', { scope: 'row' }, key),
            ...ids.map(id => {
              const m = data.metrics[key][id];
              if (!m) {
                return h('td', {}, '—');
              }
              return h(
                'td',
                { 'data-last': String(m.last) },
                h('strong', {}, formatNumber(m.last)),
                h(
                  'span',
                  { class: 'jp-WorkbenchCompare-range' },
                  trans.__(' min %1 · max %2', formatNumber(m.min), formatNumber(m.max))
                )
              );
            })
          )
        )
      )
    );

    this._content.replaceChildren(
      h('h3', {}, trans.__('Params')),
      paramsNote,
      params,
      h('h3', {}, trans.__('Metrics (last, min, max)')),
      metricKeys.length ? metrics : h('p', { class: 'jp-WorkbenchPanel-empty' }, trans.__('No metric logged.')),
      h('h3', {}, trans.__('Parallel coordinates')),
      this._parallel(data, ids, differing.map(r => r.key), metricKeys)
    );
  }

  /** A line per run across the differing params and the metrics' last values. */
  private _parallel(data: ICompare, ids: string[], params: string[], metrics: string[]): Element {
    const keys = [...params, ...metrics].slice(0, MAX_AXES);
    if (keys.length < 2) {
      return h(
        'p',
        { class: 'jp-WorkbenchPanel-empty' },
        this._trans.__('Needs two params that differ or metrics to draw.')
      );
    }
    const values = ids.map(id =>
      keys.map(key =>
        key in data.metrics && !params.includes(key)
          ? (data.metrics[key][id]?.last ?? null)
          : (data.params.differ[key]?.[id] ?? null)
      )
    );
    const axes = parallelAxes(keys, values);
    const width = Math.max(360, 140 * keys.length);
    const height = 240;
    const top = 24;
    const bottom = 28;
    const left = 50;
    const step = (width - 2 * left) / (keys.length - 1);
    const x = (i: number) => left + i * step;
    const y = (p: number) => top + (1 - p) * (height - top - bottom);
    const svg = s('svg', {
      class: 'jp-WorkbenchCompare-parallel',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': this._trans.__('Parallel coordinates of %1', keys.join(', '))
    });
    axes.forEach((axis, i) => {
      const g = s('g', { class: 'jp-WorkbenchCompare-axis', 'data-axis': axis.key });
      g.append(s('line', { x1: x(i), x2: x(i), y1: y(0), y2: y(1) }));
      g.append(s('text', { x: x(i), y: height - 8, 'text-anchor': 'middle' }, axis.key));
      for (const label of axis.labels) {
        g.append(s('text', { x: x(i) + 4, y: y(label.position) + 4, class: 'jp-mod-tick' }, label.text));
      }
      svg.append(g);
    });
    ids.forEach((id, r) => {
      const points = axes
        .map((axis, i) => (axis.positions[r] === null ? null : `${x(i)},${y(axis.positions[r]!)}`))
        .filter((p): p is string => p !== null);
      const line = s('polyline', {
        points: points.join(' '),
        fill: 'none',
        stroke: colorAt(r),
        'stroke-width': 2,
        'data-run-id': id
      });
      line.append(s('title', {}, data.runs[r].name || id));
      svg.append(line);
    });
    return svg;
  }

  private _trans: TranslationBundle;
  private _error: HTMLElement;
  private _content: HTMLElement;
}
