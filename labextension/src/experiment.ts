/**
 * An experiment in the main area: its runs in a virtualised table (sort, filter, columns,
 * selection), a metric chart of the selected runs (live while they train) and group-by-param
 * bands. Loaded on first use (see index.ts); the chart code (uPlot) loads when a run is selected.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  aggregateRuns,
  IExperiment,
  IRun,
  liveSocket,
  messageOf,
  metricHistory,
  openDocumentRecord,
  searchRuns
} from './api';
import type { IChartLine, MetricChart } from './chart';
import { chartSettings } from './chartSettings';
import {
  appendPoints,
  availableColumns,
  cellText,
  Column,
  columnLabel,
  defaultColumns,
  colorAt,
  formatNumber,
  ISeries,
  nextSort,
  orderBy,
  parseFilter,
  splitColumn,
  visibleWindow
} from './experimentsFormat';
import { listKeyTarget } from './keys';
import { h } from './dom';

function errorBox(): HTMLElement {
  const node = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
  node.hidden = true;
  return node;
}

/** Rows of a page of runs/search, and the most the table loads. */
const PAGE = 1000;
export const MAX_RUNS = 10_000;
/** Height of a table row in pixels (fixed: the virtual window's arithmetic relies on it). */
export const ROW_HEIGHT = 28;
/** Runs the chart overlays at most (the first selected). */
export const MAX_CHART_RUNS = 10;
/** Column widths in pixels (the least; wide views share the rest). */
const CHECK_WIDTH = 32;
function columnWidth(column: Column): number {
  return column === 'name' ? 160 : column === 'start_time' ? 130 : 100;
}

/** How to log a first run into an experiment, for its empty state. */
export function runHint(project: string, experiment: string): string {
  return (
    `with wb.run(experiment=${JSON.stringify(experiment)}, params={"lr": 0.01}, ` +
    `project=${JSON.stringify(project)}) as run:\n    run.log({"loss": 0.5}, step=0)`
  );
}

let sections = 0;

/** The sorted keys of the runs' params or metrics. */
function keysOf(runs: IRun[], kind: 'params' | 'metrics'): string[] {
  const keys = new Set<string>();
  for (const run of runs) {
    Object.keys(run[kind]).forEach(k => keys.add(k));
  }
  return [...keys].sort();
}

export class ExperimentView extends Widget {
  constructor(
    readonly project: string,
    readonly experiment: IExperiment,
    trans: TranslationBundle,
    compare: (runIds: string[]) => void = () => undefined,
    openDocument: (id: string) => void = () => undefined
  ) {
    super();
    this._trans = trans;
    this._compare = compare;
    this._openDocument = openDocument;
    this.addClass('jp-WorkbenchExperiment');
    this.title.label = experiment.name;
    this.title.caption = trans.__('Experiment %1/%2', project, experiment.name);
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Experiment %1', experiment.name));
    this._build();
  }

  /** The selected runs' ids, in the order they were picked. */
  get selectedRuns(): string[] {
    return [...this._selected];
  }

  /** Reload the runs (filter and sort as set), then the chart of the selection. */
  async refresh(): Promise<void> {
    const generation = ++this._generation;
    this._error.hidden = true;
    this.node.setAttribute('aria-busy', 'true');
    this._count.textContent = this._trans.__('Loading runs…');
    const runs: IRun[] = [];
    let truncated = false;
    try {
      let token: string | undefined;
      do {
        const page = await searchRuns({
          experiment_ids: [this.experiment.mlflow_experiment_id],
          filter: this._filter,
          order_by: this._sort ? [orderBy(this._sort.column, this._sort.descending)] : [],
          max_results: PAGE,
          ...(token ? { page_token: token } : {})
        });
        if (generation !== this._generation) {
          return;
        }
        runs.push(...page.runs);
        token = page.next_page_token ?? undefined;
        this._count.textContent = this._trans.__('Loading runs… %1', runs.length);
        if (runs.length >= MAX_RUNS && token) {
          truncated = true;
          break;
        }
      } while (token);
      this._runs = runs;
      this._byId = new Map(runs.map(r => [r.run_id, r]));
      this._available = availableColumns(runs);
      if (!this._columnsChosen) {
        this._columns = defaultColumns(this._available);
      } else {
        this._columns = this._columns.filter(c => this._available.includes(c));
      }
      this._count.textContent = truncated
        ? this._trans.__('the first %1 runs', runs.length)
        : this._trans._n('%1 run', '%1 runs', runs.length);
      this._empty.hidden = runs.length > 0 || this._filter !== '';
      this._noMatch.hidden = runs.length > 0 || this._filter === '';
      this._renderChooser();
      this._renderHeader();
      if (this._pendingSelect) {
        this._selected = new Set(this._pendingSelect.filter(id => this._byId.has(id)));
        this._pendingSelect = null;
      }
      this._renderRows(true);
      this._selectionUpdated();
    } catch (error) {
      if (generation === this._generation) {
        this._show(this._error, messageOf(error));
        this._count.textContent = '';
      }
    } finally {
      if (generation === this._generation) {
        this.node.setAttribute('aria-busy', 'false');
        this.node.dataset.loaded = 'true';
      }
    }
  }

  /** Select these runs once the runs are loaded (at once if they are); a filter that hides
   * one of them is cleared first. */
  selectWhenLoaded(runIds: string[]): void {
    const loaded =
      this.node.dataset.loaded === 'true' && this.node.getAttribute('aria-busy') !== 'true';
    if (loaded && runIds.every(id => this._byId.has(id))) {
      this.select(runIds);
      return;
    }
    this._pendingSelect = runIds;
    if (loaded && this._filter !== '') {
      this._filter = '';
      this._filterInput.value = '';
      void this.refresh();
    }
  }

  /** Select these runs (as ticking their boxes does). */
  select(runIds: string[]): void {
    this._selected = new Set(runIds.filter(id => this._byId.has(id)));
    this._renderRows(true);
    this._selectionUpdated();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._closeSockets(new Set());
    this._chart?.dispose();
    this._bandChart?.dispose();
    window.clearTimeout(this._chartTimer);
    super.dispose();
  }

  protected onAfterAttach(): void {
    if (this.node.dataset.loaded !== 'true') {
      void this.refresh();
    }
  }

  protected onResize(): void {
    this._renderRows(false);
    this._sizeCharts();
  }

  protected onAfterShow(): void {
    this._renderRows(true);
    this._sizeCharts();
  }

  private _section(title: string, ...children: HTMLElement[]): HTMLElement {
    const id = `jp-WorkbenchExperiment-section-${++sections}`;
    return h(
      'section',
      { class: 'jp-WorkbenchExperiment-section', 'aria-labelledby': id },
      h('h3', { id }, title),
      ...children
    );
  }

  private _build(): void {
    const trans = this._trans;
    const refresh = h(
      'button',
      {
        class: 'jp-WorkbenchPanel-refresh jp-mod-styled',
        type: 'button',
        title: trans.__('Reload the runs'),
        'aria-label': trans.__('Reload the runs')
      },
      '⟳'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this._error = errorBox();
    this._error.setAttribute('aria-live', 'assertive');
    // the experiment's report: a shared document everyone with the project co-edits
    const report = h(
      'button',
      {
        class: 'jp-mod-styled jp-WorkbenchExperiment-report',
        type: 'button',
        title: trans.__("Open the experiment's report, edited together with your project")
      },
      trans.__('Report')
    ) as HTMLButtonElement;
    report.addEventListener('click', async () => {
      report.disabled = true;
      this._error.hidden = true;
      try {
        const doc = await openDocumentRecord(this.project, 'report', this.experiment.name);
        this._openDocument(doc.id);
      } catch (error) {
        this._show(this._error, messageOf(error));
      } finally {
        report.disabled = false;
      }
    });
    const header = h(
      'header',
      { class: 'jp-WorkbenchExperiment-header' },
      h(
        'div',
        { class: 'jp-WorkbenchPanel-header' },
        h('h2', {}, `${this.project}/${this.experiment.name}`),
        h('span', { class: 'jp-WorkbenchExperiment-headerTools' }, report, refresh)
      ),
      this._error
    );

    // filter box, column chooser, run count, compare
    this._filterInput = h('input', {
      class: 'jp-mod-styled',
      name: 'filter',
      type: 'search',
      placeholder: trans.__('Filter, e.g. lr = 0.01 and loss < 0.5'),
      'aria-label': trans.__('Filter runs by params, metrics and tags')
    }) as HTMLInputElement;
    this._filterError = errorBox();
    const filterForm = h(
      'form',
      { class: 'jp-WorkbenchExperiment-filter', role: 'search' },
      this._filterInput,
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Filter'))
    );
    filterForm.addEventListener('submit', event => {
      event.preventDefault();
      this._applyFilter();
    });
    this._chooser = h('div', { class: 'jp-WorkbenchExperiment-chooserList' });
    const chooser = h(
      'details',
      { class: 'jp-WorkbenchExperiment-chooser' },
      h('summary', {}, trans.__('Columns')),
      this._chooser
    );
    this._count = h('span', { class: 'jp-WorkbenchExperiment-count', 'aria-live': 'polite' });
    this._compareButton = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept jp-WorkbenchExperiment-compare', type: 'button' },
      trans.__('Compare selected')
    ) as HTMLButtonElement;
    this._compareButton.disabled = true;
    this._compareButton.addEventListener('click', () => this._compare(this.selectedRuns));
    const toolbar = h(
      'div',
      { class: 'jp-WorkbenchExperiment-toolbar' },
      filterForm,
      chooser,
      this._count,
      this._compareButton
    );

    this._empty = h(
      'div',
      { class: 'jp-WorkbenchPanel-empty jp-WorkbenchExperiment-empty' },
      h('p', {}, trans.__('No runs yet. Log a run from a notebook:')),
      h('pre', {}, runHint(this.project, this.experiment.name)),
      h('p', {}, trans.__('then reload (⟳). Runs that train show up with their live metrics.'))
    );
    this._empty.hidden = true;
    this._noMatch = h(
      'p',
      { class: 'jp-WorkbenchPanel-empty jp-WorkbenchExperiment-noMatch' },
      trans.__('No run matches the filter.')
    );
    this._noMatch.hidden = true;

    // the virtualised table: a sticky header row and only the visible rows in the DOM
    this._head = h('div', { class: 'jp-WorkbenchExperiment-head', role: 'row', 'aria-rowindex': '1' });
    this._body = h('div', { class: 'jp-WorkbenchExperiment-body', role: 'rowgroup' });
    this._viewport = h(
      'div',
      {
        class: 'jp-WorkbenchExperiment-table',
        role: 'grid',
        'aria-label': trans.__('Runs'),
        'aria-multiselectable': 'true',
        tabindex: '0'
      },
      h('div', { role: 'rowgroup', class: 'jp-WorkbenchExperiment-headGroup' }, this._head),
      this._body
    );
    this._viewport.addEventListener('scroll', () => this._renderRows(false), { passive: true });
    this._viewport.addEventListener('keydown', event => this._onTableKey(event));

    // the chart of the selected runs
    this._metricSelect = h('select', {
      class: 'jp-mod-styled',
      name: 'metric',
      'aria-label': trans.__('Metric to chart')
    }) as HTMLSelectElement;
    this._metricSelect.addEventListener('change', () => {
      this._metric = this._metricSelect.value;
      void this._loadChart();
      void this._loadBands();
    });
    const defaults = chartSettings();
    this._logToggle = h('input', { type: 'checkbox', name: 'log' }) as HTMLInputElement;
    this._logToggle.checked = defaults.logScale;
    this._logToggle.addEventListener('change', () => this._chart?.setLog(this._logToggle.checked));
    this._smoothing = h('input', {
      type: 'range',
      name: 'smoothing',
      min: '0',
      max: '0.99',
      step: '0.01',
      value: String(defaults.smoothing)
    }) as HTMLInputElement;
    this._smoothingValue = h('output', {}, defaults.smoothing.toFixed(2));
    this._smoothing.addEventListener('input', () => {
      const weight = Number(this._smoothing.value);
      this._smoothingValue.textContent = weight.toFixed(2);
      this._chart?.setSmoothing(weight);
    });
    const controls = h(
      'div',
      { class: 'jp-WorkbenchExperiment-chartControls' },
      h('label', {}, trans.__('Metric'), this._metricSelect),
      h('label', {}, this._logToggle, trans.__('Log scale')),
      h('label', {}, trans.__('Smoothing'), this._smoothing, this._smoothingValue)
    );
    this._chartHint = h(
      'p',
      { class: 'jp-WorkbenchPanel-empty jp-WorkbenchExperiment-chartHint' },
      trans.__('Tick runs in the table to chart their metrics (drag on the chart to zoom, double-click to reset).')
    );
    this._chartError = errorBox();
    this._chartHost = h('div', {
      class: 'jp-WorkbenchExperiment-chart',
      role: 'img',
      'aria-label': trans.__('Metric chart of the selected runs')
    });
    this._legend = h('ul', {
      class: 'jp-WorkbenchExperiment-legend',
      'aria-label': trans.__('Charted runs'),
      'aria-live': 'polite'
    });
    this._chartNote = h('p', { class: 'jp-WorkbenchExperiment-note' });
    this._chartNote.hidden = true;
    this._chartBox = h(
      'div',
      {},
      controls,
      this._chartError,
      this._chartNote,
      this._chartHost,
      this._legend
    );
    this._chartBox.hidden = true;

    // group-by-param bands
    this._groupSelect = h('select', {
      class: 'jp-mod-styled',
      name: 'group_by',
      'aria-label': trans.__('Average over param')
    }) as HTMLSelectElement;
    const bandsForm = h(
      'form',
      { class: 'jp-WorkbenchExperiment-bandsForm' },
      h('label', {}, trans.__('Average the runs over'), this._groupSelect),
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Show bands'))
    );
    bandsForm.addEventListener('submit', event => {
      event.preventDefault();
      this._bandsOn = true;
      void this._loadBands();
    });
    this._bandsError = errorBox();
    this._bandsHost = h('div', {
      class: 'jp-WorkbenchExperiment-chart jp-WorkbenchExperiment-bands',
      role: 'img',
      'aria-label': trans.__('Mean and min/max band of each group')
    });
    this._bandsLegend = h('ul', { class: 'jp-WorkbenchExperiment-legend', 'aria-live': 'polite' });
    this._bandsBox = h(
      'div',
      {},
      h(
        'p',
        { class: 'jp-WorkbenchExperiment-note' },
        trans.__(
          'Runs that differ only in this param (e.g. seed) form a group: its mean line and min/max band.'
        )
      ),
      bandsForm,
      this._bandsError,
      this._bandsHost,
      this._bandsLegend
    );
    this._bandsBox.hidden = true;
    this._bandsHint = h(
      'p',
      { class: 'jp-WorkbenchPanel-empty' },
      trans.__('Select two or more runs to average them over a param, such as seed.')
    );

    this.node.append(
      header,
      toolbar,
      this._filterError,
      this._empty,
      this._noMatch,
      this._viewport,
      this._section(trans.__('Chart'), this._chartHint, this._chartBox),
      this._section(trans.__('Group by param'), this._bandsHint, this._bandsBox)
    );
  }

  private _applyFilter(): void {
    this._filterError.hidden = true;
    const known = {
      params: this._keys('params'),
      metrics: this._keys('metrics'),
      tags: this._keys('tags')
    };
    const parsed = parseFilter(this._filterInput.value, known);
    if ('error' in parsed) {
      this._show(this._filterError, parsed.error);
      return;
    }
    this._filter = parsed.filter;
    void this.refresh();
  }

  /** The keys of a kind the loaded runs have (kept from an unfiltered load for the filter box). */
  private _keys(kind: 'params' | 'metrics' | 'tags'): string[] {
    for (const column of this._available) {
      const [k, key] = splitColumn(column);
      if (k === kind) {
        this._known[kind].add(key);
      }
    }
    return [...this._known[kind]];
  }

  private _renderChooser(): void {
    this._chooser.replaceChildren(
      ...this._available.map(column => {
        const box = h('input', {
          type: 'checkbox',
          name: 'column',
          value: column
        }) as HTMLInputElement;
        box.checked = this._columns.includes(column);
        box.addEventListener('change', () => {
          this._columnsChosen = true;
          const chosen = new Set(this._columns);
          if (box.checked) {
            chosen.add(column);
          } else {
            chosen.delete(column);
          }
          // keep the table's order: base, params, metrics, tags
          this._columns = this._available.filter(c => chosen.has(c));
          this._renderHeader();
          this._renderRows(true);
        });
        return h('label', {}, box, column);
      })
    );
  }

  private _gridTemplate(): string {
    return `${CHECK_WIDTH}px ${this._columns
      .map(c => `minmax(${columnWidth(c)}px, ${c === 'name' ? 2 : 1}fr)`)
      .join(' ')}`;
  }

  /** The narrowest the rows get (wider tables scroll sideways, header and rows together). */
  private _minWidth(): string {
    return `${this._columns.reduce((sum, c) => sum + columnWidth(c), CHECK_WIDTH)}px`;
  }

  private _renderHeader(): void {
    const trans = this._trans;
    const template = this._gridTemplate();
    this._head.style.gridTemplateColumns = template;
    this._head.style.minWidth = this._minWidth();
    this._body.style.minWidth = this._minWidth();
    this._viewport.setAttribute('aria-rowcount', String(this._runs.length + 1));
    this._viewport.setAttribute('aria-colcount', String(this._columns.length + 1));
    const all = h('input', {
      type: 'checkbox',
      'aria-label': trans.__('Select no run')
    }) as HTMLInputElement;
    all.checked = this._selected.size > 0;
    all.disabled = this._selected.size === 0;
    all.addEventListener('change', () => this.select([]));
    const cells = this._columns.map(column => {
      const sorted = this._sort?.column === column;
      const direction = sorted ? (this._sort!.descending ? 'descending' : 'ascending') : 'none';
      const [kind] = splitColumn(column);
      const button = h(
        'button',
        {
          type: 'button',
          class: 'jp-WorkbenchExperiment-sort',
          title: column,
          'aria-label': trans.__('Sort by %1', column)
        },
        columnLabel(column),
        sorted ? (this._sort!.descending ? ' ▼' : ' ▲') : ''
      );
      button.addEventListener('click', () => {
        this._sort = nextSort(this._sort, column);
        void this.refresh();
      });
      return h(
        'div',
        {
          role: 'columnheader',
          class: `jp-WorkbenchExperiment-cell jp-mod-${kind}`,
          'aria-sort': direction,
          'data-column': column
        },
        button
      );
    });
    this._head.replaceChildren(h('div', { role: 'columnheader', class: 'jp-WorkbenchExperiment-cell' }, all), ...cells);
  }

  /** Put the rows in view (and a few around them) in the DOM; `force` after data changed. */
  private _renderRows(force: boolean): void {
    const total = this._runs.length;
    this._body.style.height = `${total * ROW_HEIGHT}px`;
    const headHeight = this._head.offsetHeight || ROW_HEIGHT;
    const win = visibleWindow(
      this._viewport.scrollTop - headHeight,
      this._viewport.clientHeight || 400,
      ROW_HEIGHT,
      total
    );
    if (!force && win.start === this._window.start && win.end === this._window.end) {
      return;
    }
    this._window = win;
    const template = this._gridTemplate();
    const rows: HTMLElement[] = [];
    for (let i = win.start; i < win.end; i++) {
      rows.push(this._row(this._runs[i], i, template));
    }
    this._body.replaceChildren(...rows);
    this._viewport.dataset.rendered = String(rows.length);
  }

  private _row(run: IRun, index: number, template: string): HTMLElement {
    const selected = this._selected.has(run.run_id);
    const name = cellText(run, 'name');
    const box = h('input', {
      type: 'checkbox',
      tabindex: '-1',
      'aria-label': this._trans.__('Select run %1', name)
    }) as HTMLInputElement;
    box.checked = selected;
    const row = h(
      'div',
      {
        role: 'row',
        class:
          'jp-WorkbenchExperiment-row' +
          (selected ? ' jp-mod-selected' : '') +
          (index === this._cursor ? ' jp-mod-cursor' : ''),
        'aria-rowindex': String(index + 2),
        'aria-selected': String(selected),
        'data-run-id': run.run_id,
        'data-index': String(index),
        'data-status': run.status ?? ''
      },
      h('div', { role: 'gridcell', class: 'jp-WorkbenchExperiment-cell' }, box),
      ...this._columns.map(column =>
        h(
          'div',
          {
            role: 'gridcell',
            class: `jp-WorkbenchExperiment-cell jp-mod-${splitColumn(column)[0]}`,
            'data-column': column,
            title: cellText(run, column)
          },
          cellText(run, column)
        )
      )
    );
    row.style.gridTemplateColumns = template;
    row.style.minWidth = this._minWidth();
    row.style.top = `${index * ROW_HEIGHT}px`;
    row.style.height = `${ROW_HEIGHT}px`;
    row.addEventListener('click', () => {
      this._cursor = index;
      this._toggle(run.run_id);
    });
    return row;
  }

  private _toggle(runId: string): void {
    if (this._selected.has(runId)) {
      this._selected.delete(runId);
    } else {
      this._selected.add(runId);
    }
    this._renderRows(true);
    this._selectionUpdated();
  }

  /** Arrow keys move the cursor row, space or Enter tick it. */
  private _onTableKey(event: KeyboardEvent): void {
    if (event.target !== this._viewport) {
      return;
    }
    if ((event.key === ' ' || event.key === 'Enter') && this._cursor >= 0) {
      event.preventDefault();
      const run = this._runs[this._cursor];
      if (run) {
        this._toggle(run.run_id);
      }
      return;
    }
    const next = listKeyTarget(event.key, this._cursor, this._runs.length);
    if (next === null) {
      return;
    }
    event.preventDefault();
    this._cursor = next;
    const top = next * ROW_HEIGHT;
    const head = this._head.offsetHeight || ROW_HEIGHT;
    const view = this._viewport;
    if (top < view.scrollTop) {
      view.scrollTop = top;
    } else if (top + ROW_HEIGHT + head > view.scrollTop + view.clientHeight) {
      view.scrollTop = top + ROW_HEIGHT + head - view.clientHeight;
    }
    this._renderRows(true);
  }

  private _selectionUpdated(): void {
    // runs that a new filter hid are no longer selected
    for (const id of [...this._selected]) {
      if (!this._byId.has(id)) {
        this._selected.delete(id);
      }
    }
    const count = this._selected.size;
    this._compareButton.disabled = count < 2;
    this._compareButton.textContent =
      count < 2 ? this._trans.__('Compare selected') : this._trans.__('Compare %1 runs', count);
    this._renderHeader();
    this._chartHint.hidden = count > 0;
    this._chartBox.hidden = count === 0;
    this._bandsBox.hidden = count < 2;
    this._bandsHint.hidden = count >= 2;
    window.clearTimeout(this._chartTimer);
    this._chartTimer = window.setTimeout(() => {
      void this._loadChart();
      if (this._bandsOn) {
        void this._loadBands();
      }
    }, 120);
  }

  /** The metrics of the selected runs, the charted one kept if it is among them. */
  private _renderMetricChoices(runs: IRun[]): void {
    const keys = keysOf(runs, 'metrics');
    if (!keys.includes(this._metric)) {
      this._metric = keys.includes('loss') ? 'loss' : (keys[0] ?? '');
    }
    this._metricSelect.replaceChildren(...keys.map(k => h('option', { value: k }, k)));
    this._metricSelect.value = this._metric;
    const params = keysOf(runs, 'params');
    const group = this._groupSelect.value || (params.includes('seed') ? 'seed' : (params[0] ?? ''));
    this._groupSelect.replaceChildren(...params.map(k => h('option', { value: k }, k)));
    this._groupSelect.value = params.includes(group) ? group : (params[0] ?? '');
  }

  private async _ensureChart(): Promise<MetricChart> {
    if (!this._chart) {
      const { MetricChart } = await import('./chart');
      this._chart = new MetricChart(this._chartHost);
      this._chart.setLog(this._logToggle.checked);
      this._chart.setSmoothing(Number(this._smoothing.value));
      this._sizeCharts();
    }
    return this._chart;
  }

  /** Fetch the downsampled histories of the selected runs' metric; follow the running ones. */
  private async _loadChart(): Promise<void> {
    const generation = ++this._chartGeneration;
    const runs = this.selectedRuns
      .slice(0, MAX_CHART_RUNS)
      .map(id => this._byId.get(id))
      .filter((r): r is IRun => r !== undefined);
    this._chartError.hidden = true;
    this._chartNote.hidden = this._selected.size <= MAX_CHART_RUNS;
    this._chartNote.textContent = this._trans.__(
      'The chart shows the first %1 of the %2 selected runs.',
      MAX_CHART_RUNS,
      this._selected.size
    );
    if (!runs.length) {
      this._closeSockets(new Set());
      return;
    }
    this._renderMetricChoices(runs);
    const metric = this._metric;
    // follow the running ones first: points logged while the histories load are not lost
    const live = new Set(runs.filter(r => r.status === 'RUNNING').map(r => r.run_id));
    this._closeSockets(live);
    this._series = new Map();
    for (const id of live) {
      this._follow(id);
    }
    this._chartHost.setAttribute('aria-busy', 'true');
    try {
      const [histories, chart] = await Promise.all([
        Promise.all(
          runs.map(r => (metric ? metricHistory(r.run_id, metric, chartSettings().maxPoints) : null))
        ),
        this._ensureChart()
      ]);
      if (generation !== this._chartGeneration) {
        return;
      }
      const lines: IChartLine[] = runs.map((run, i) => {
        const history = histories[i];
        const series: ISeries = { steps: history?.steps ?? [], values: history?.values ?? [] };
        appendPoints(series, this._pending.get(run.run_id) ?? []);
        this._series.set(run.run_id, series);
        return { id: run.run_id, label: cellText(run, 'name'), series };
      });
      this._pending.clear();
      this._lines = lines;
      chart.setLines(lines);
      this._renderLegend();
    } catch (error) {
      if (generation === this._chartGeneration) {
        this._show(this._chartError, messageOf(error));
      }
    } finally {
      this._chartHost.setAttribute('aria-busy', 'false');
    }
  }

  private _renderLegend(): void {
    this._legend.replaceChildren(
      ...this._lines.map((line, i) => {
        const run = this._byId.get(line.id);
        const n = line.series.steps.length;
        const last = n ? line.series.values[n - 1] : null;
        const status = run?.status ?? '';
        return h(
          'li',
          {
            class: 'jp-WorkbenchExperiment-legendItem',
            'data-run-id': line.id,
            'data-points': String(n),
            'data-status': status
          },
          h('span', { class: 'jp-WorkbenchExperiment-swatch', style: `background: ${colorAt(i)}` }),
          h('span', { class: 'jp-WorkbenchExperiment-legendName' }, line.label),
          h(
            'span',
            { class: 'jp-WorkbenchExperiment-legendStats' },
            this._trans.__(
              '%1 points · last %2 at step %3',
              n,
              formatNumber(last),
              n ? line.series.steps[n - 1] : '–'
            )
          ),
          status === 'RUNNING' && this._sockets.has(line.id)
            ? h('span', { class: 'jp-WorkbenchExperiment-live' }, this._trans.__('live'))
            : ''
        );
      })
    );
  }

  /** Subscribe to a running run's new points. */
  private _follow(runId: string): void {
    if (this._sockets.has(runId)) {
      return;
    }
    let socket: WebSocket;
    try {
      socket = liveSocket(runId);
    } catch (error) {
      this._show(this._chartError, messageOf(error));
      return;
    }
    this._sockets.set(runId, socket);
    socket.onmessage = event => this._onLive(runId, String(event.data));
    socket.onclose = () => {
      if (this._sockets.get(runId) === socket) {
        this._sockets.delete(runId);
        if (!this.isDisposed) {
          this._renderLegend();
        }
      }
    };
  }

  private _onLive(runId: string, text: string): void {
    let message: {
      metrics?: { key: string; value: number | null; step: number; timestamp: number }[];
      status?: string;
    };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const run = this._byId.get(runId);
    const points = (message.metrics ?? []).filter(p => p.key === this._metric);
    if (run) {
      for (const p of message.metrics ?? []) {
        if (p.value !== null && run.metrics[p.key] !== p.value) {
          run.metrics[p.key] = p.value;
          this._rowsStale = true; // the table's metric cells show the latest values
        }
      }
    }
    if (points.length) {
      const series = this._series.get(runId);
      if (series) {
        appendPoints(series, points);
        this._chart?.changed();
      } else {
        this._pending.set(runId, [...(this._pending.get(runId) ?? []), ...points]);
      }
    }
    if (message.status && run) {
      run.status = message.status;
      if (message.status !== 'RUNNING') {
        this._sockets.get(runId)?.close();
      }
      this._rowsStale = true;
    }
    this._scheduleRedraw();
  }

  /** Redraw the legend and the visible rows at most a few times a second while points stream
   * in. */
  private _scheduleRedraw(): void {
    if (this._legendTimer) {
      return;
    }
    this._legendTimer = window.setTimeout(() => {
      this._legendTimer = 0;
      if (this.isDisposed) {
        return;
      }
      this._renderLegend();
      if (this._rowsStale) {
        this._rowsStale = false;
        this._renderRows(true);
      }
    }, 200);
  }

  private _closeSockets(keep: Set<string>): void {
    for (const [id, socket] of [...this._sockets]) {
      if (!keep.has(id)) {
        this._sockets.delete(id);
        socket.close();
      }
    }
  }

  /** Group the selected runs by every param but one (e.g. seed): mean line and min/max band. */
  private async _loadBands(): Promise<void> {
    if (!this._bandsOn) {
      return;
    }
    const runIds = this.selectedRuns.slice(0, 100);
    const groupBy = this._groupSelect.value;
    this._bandsError.hidden = true;
    if (runIds.length < 2 || !groupBy || !this._metric) {
      return;
    }
    const generation = ++this._bandsGeneration;
    try {
      const [result, { MetricChart }] = await Promise.all([
        aggregateRuns(runIds, this._metric, groupBy),
        import('./chart')
      ]);
      if (generation !== this._bandsGeneration) {
        return;
      }
      if (!this._bandChart) {
        this._bandChart = new MetricChart(this._bandsHost);
        this._sizeCharts();
      }
      const lines: IChartLine[] = result.groups.map(group => {
        const label =
          Object.entries(group.params)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ') || this._trans.__('all runs');
        return {
          id: label,
          label,
          series: { steps: group.steps, values: group.mean },
          band: { min: group.min, max: group.max }
        };
      });
      this._bandChart.setLines(lines);
      this._bandsLegend.replaceChildren(
        ...result.groups.map((group, i) =>
          h(
            'li',
            {
              class: 'jp-WorkbenchExperiment-legendItem',
              'data-runs': String(group.runs.length)
            },
            h('span', { class: 'jp-WorkbenchExperiment-swatch', style: `background: ${colorAt(i)}` }),
            h('span', { class: 'jp-WorkbenchExperiment-legendName' }, lines[i].label),
            h(
              'span',
              { class: 'jp-WorkbenchExperiment-legendStats' },
              this._trans.__('mean of %1 runs over %2', group.runs.length, groupBy)
            )
          )
        )
      );
    } catch (error) {
      if (generation === this._bandsGeneration) {
        this._show(this._bandsError, messageOf(error));
      }
    }
  }

  private _sizeCharts(): void {
    const width = this.node.clientWidth - 48;
    if (width > 0) {
      this._chart?.resize(width, 300);
      this._bandChart?.resize(width, 260);
    }
  }

  private _show(node: HTMLElement, message: string): void {
    node.textContent = message;
    node.hidden = false;
  }

  private _trans: TranslationBundle;
  private _compare: (runIds: string[]) => void;
  private _generation = 0;
  private _chartGeneration = 0;
  private _bandsGeneration = 0;
  private _runs: IRun[] = [];
  private _byId = new Map<string, IRun>();
  private _available: Column[] = [];
  private _columns: Column[] = [];
  private _columnsChosen = false;
  private _known = { params: new Set<string>(), metrics: new Set<string>(), tags: new Set<string>() };
  private _sort: { column: Column; descending: boolean } | null = {
    column: 'start_time',
    descending: true
  };
  private _filter = '';
  private _pendingSelect: string[] | null = null;
  private _selected = new Set<string>();
  private _cursor = -1;
  private _window = { start: 0, end: 0, offset: 0 };
  private _metric = '';
  private _chart: MetricChart | null = null;
  private _bandChart: MetricChart | null = null;
  private _bandsOn = false;
  private _lines: IChartLine[] = [];
  private _series = new Map<string, ISeries>();
  private _pending = new Map<string, { step: number; value: number | null }[]>();
  private _sockets = new Map<string, WebSocket>();
  private _openDocument: (id: string) => void;
  private _rowsStale = false;
  private _chartTimer = 0;
  private _legendTimer = 0;
  private _error!: HTMLElement;
  private _filterInput!: HTMLInputElement;
  private _filterError!: HTMLElement;
  private _chooser!: HTMLElement;
  private _count!: HTMLElement;
  private _compareButton!: HTMLButtonElement;
  private _empty!: HTMLElement;
  private _noMatch!: HTMLElement;
  private _head!: HTMLElement;
  private _body!: HTMLElement;
  private _viewport!: HTMLElement;
  private _metricSelect!: HTMLSelectElement;
  private _logToggle!: HTMLInputElement;
  private _smoothing!: HTMLInputElement;
  private _smoothingValue!: HTMLElement;
  private _chartHint!: HTMLElement;
  private _chartError!: HTMLElement;
  private _chartHost!: HTMLElement;
  private _legend!: HTMLElement;
  private _chartBox!: HTMLElement;
  private _groupSelect!: HTMLSelectElement;
  private _bandsError!: HTMLElement;
  private _bandsHost!: HTMLElement;
  private _bandsLegend!: HTMLElement;
  private _bandsBox!: HTMLElement;
  private _bandsHint!: HTMLElement;
  private _chartNote!: HTMLElement;
}
