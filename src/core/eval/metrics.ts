/**
 * Evaluation metrics, pure and synchronous: classification (accuracy, precision / recall / F1,
 * confusion matrix, abstain rate, expected calibration error), entity spans (exact and partial
 * matching), JSON fields (leaf JSON Pointer paths) and latency percentiles.
 *
 * Conventions: a ratio whose denominator is 0 is `null` (not 0, not NaN): "no data", which a
 * report shows as such. F1 is `null` only when there was nothing to find and nothing found.
 */
import { escapePointerToken } from '../../shared/jsonPointer';
import { jsonEqual } from './records';

/** `num / den`, or null when `den` is 0. */
export function ratio(num: number, den: number): number | null {
  return den === 0 ? null : num / den;
}

/** Counts of one binary decision. */
export interface Counts {
  tp: number;
  fp: number;
  fn: number;
}

/** Precision, recall and F1 of some counts (see the module doc for the `null` rules). */
export interface Prf {
  precision: number | null;
  recall: number | null;
  f1: number | null;
}

/**
 * Precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2tp / (2tp + fp + fn) (the harmonic
 * mean of P and R where both exist; 0 when there were gold or predicted items but no tp; null only
 * when tp = fp = fn = 0).
 */
export function prf(c: Counts): Prf {
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  const f1 = ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);
  return { precision, recall, f1 };
}

/** Mean of the non-null values, or null when there are none. */
export function meanOf(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length ? v.reduce((s, x) => s + x, 0) / v.length : null;
}

// ---------------------------------------------------------------------------------------------
// Calibration

/** One bin of a reliability diagram: `[lo, hi)` (the last bin includes 1). */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean confidence in the bin (null when empty). */
  confidence: number | null;
  /** Fraction correct in the bin (null when empty). */
  accuracy: number | null;
}

/** Expected calibration error and its bins. */
export interface Calibration {
  /** ECE = sum over bins of (count / n) * |accuracy - confidence|; null when n = 0. */
  ece: number | null;
  bins: CalibrationBin[];
}

/**
 * Expected calibration error with `binCount` equal-width bins over [0, 1]: a prediction with
 * confidence c goes to bin `min(floor(c * binCount), binCount - 1)`, so bins are `[k/M, (k+1)/M)`
 * and the last one also holds c = 1.
 * @param items  per prediction, its confidence in [0, 1] (the probability the model gave to the
 *   answer it chose) and whether that answer was right.
 * @throws RangeError when `binCount` is not a positive integer.
 */
export function calibration(items: readonly { confidence: number; correct: boolean }[], binCount = 10): Calibration {
  if (!Number.isInteger(binCount) || binCount < 1) throw new RangeError(`binCount must be a positive integer, got ${binCount}`);
  const sums = Array.from({ length: binCount }, () => ({ n: 0, conf: 0, right: 0 }));
  for (const it of items) {
    const c = Math.min(1, Math.max(0, it.confidence));
    const b = sums[Math.min(Math.floor(c * binCount), binCount - 1)];
    b.n++;
    b.conf += c;
    if (it.correct) b.right++;
  }
  const n = items.length;
  let ece = 0;
  const bins = sums.map((b, k) => {
    if (b.n) ece += (b.n / n) * Math.abs(b.right / b.n - b.conf / b.n);
    return { lo: k / binCount, hi: (k + 1) / binCount, count: b.n, confidence: ratio(b.conf, b.n), accuracy: ratio(b.right, b.n) };
  });
  return { ece: n ? ece : null, bins };
}

// ---------------------------------------------------------------------------------------------
// Classification

/** One single-label prediction: the gold label, the model's label (null = abstained) and its confidence. */
export interface SingleLabelItem {
  expected: string;
  /** The label returned (null when the classifier abstained). */
  predicted: string | null;
  /** The top label, abstained or not, and its probability (used for calibration). */
  top: string;
  topProbability: number;
}

/** Precision / recall / F1 of one label plus its support (records whose gold label it is). */
export interface LabelMetrics extends Prf, Counts {
  support: number;
}

/** Single-label classification metrics. */
export interface SingleLabelMetrics {
  n: number;
  /** Correct / n; an abstention counts as wrong. */
  accuracy: number | null;
  /** Accuracy over the records not abstained on. */
  accuracyAnswered: number | null;
  /** Mean F1 over the labels with support > 0 or at least one prediction. */
  macroF1: number | null;
  /** Abstained / n. */
  abstainRate: number | null;
  perLabel: Record<string, LabelMetrics>;
  /**
   * `matrix[i][j]` = records with gold label `labels[i]` predicted as `columns[j]`;
   * `columns` is the labels followed by `"(abstain)"`.
   */
  confusion: { labels: string[]; columns: string[]; matrix: number[][] };
  /** On the top label, abstained or not: confidence = its probability, correct = it is the gold label. */
  calibration: Calibration;
}

/** Name of the confusion matrix column counting abstentions. */
export const ABSTAIN_COLUMN = '(abstain)';

/**
 * Metrics of a single-label classifier.
 * @param labels  the adapter's labels (rows and columns of the confusion matrix, in this order).
 * @throws RangeError when an item names a label not in `labels`.
 */
export function singleLabelMetrics(labels: readonly string[], items: readonly SingleLabelItem[], binCount = 10): SingleLabelMetrics {
  const index = new Map(labels.map((l, i) => [l, i]));
  const at = (l: string) => {
    const i = index.get(l);
    if (i === undefined) throw new RangeError(`label ${JSON.stringify(l)} is not one of ${labels.join(', ')}`);
    return i;
  };
  const matrix = labels.map(() => new Array<number>(labels.length + 1).fill(0));
  let correct = 0;
  let abstained = 0;
  for (const it of items) {
    const col = it.predicted === null ? labels.length : at(it.predicted);
    matrix[at(it.expected)][col]++;
    if (it.predicted === null) abstained++;
    else if (it.predicted === it.expected) correct++;
  }
  const perLabel: Record<string, LabelMetrics> = {};
  labels.forEach((l, i) => {
    const tp = matrix[i][i];
    const support = matrix[i].reduce((s, x) => s + x, 0);
    const predicted = matrix.reduce((s, row) => s + row[i], 0);
    perLabel[l] = { ...prf({ tp, fp: predicted - tp, fn: support - tp }), tp, fp: predicted - tp, fn: support - tp, support };
  });
  const n = items.length;
  return {
    n,
    accuracy: ratio(correct, n),
    accuracyAnswered: ratio(correct, n - abstained),
    macroF1: meanOf(labels.map((l) => perLabel[l].f1)),
    abstainRate: ratio(abstained, n),
    perLabel,
    confusion: { labels: [...labels], columns: [...labels, ABSTAIN_COLUMN], matrix },
    calibration: calibration(items.map((it) => ({ confidence: it.topProbability, correct: it.top === it.expected })), binCount),
  };
}

/** One multi-label prediction: gold labels, selected labels and every label's probability. */
export interface MultiLabelItem {
  expected: readonly string[];
  selected: readonly string[];
  /** Probability per label (independent, each in [0, 1]). */
  probabilities: Readonly<Record<string, number>>;
}

/** Multi-label classification metrics (each label is a yes/no decision per record). */
export interface MultiLabelMetrics {
  n: number;
  /** Records whose selected set equals the gold set, / n (subset accuracy). */
  accuracy: number | null;
  /** Mean per-label F1 over the labels with support > 0 or at least one prediction. */
  macroF1: number | null;
  /** F1 of the pooled counts of all labels. */
  microF1: number | null;
  /** Records with no label selected, / n (the classifier's `abstained`). */
  abstainRate: number | null;
  perLabel: Record<string, LabelMetrics & { tn: number }>;
  /**
   * Over every (record, label) decision: the decision is "applies" when the label was selected;
   * confidence = p when selected, 1 - p otherwise; correct = the decision matches the gold set.
   */
  calibration: Calibration;
}

/** Metrics of a multi-label classifier over the adapter's `labels`. */
export function multiLabelMetrics(labels: readonly string[], items: readonly MultiLabelItem[], binCount = 10): MultiLabelMetrics {
  const perLabel: MultiLabelMetrics['perLabel'] = {};
  const pooled: Counts = { tp: 0, fp: 0, fn: 0 };
  const decisions: { confidence: number; correct: boolean }[] = [];
  for (const l of labels) {
    const c = { tp: 0, fp: 0, fn: 0, tn: 0 };
    for (const it of items) {
      const gold = it.expected.includes(l);
      const sel = it.selected.includes(l);
      if (gold && sel) c.tp++;
      else if (sel) c.fp++;
      else if (gold) c.fn++;
      else c.tn++;
      const p = it.probabilities[l] ?? 0;
      decisions.push({ confidence: sel ? p : 1 - p, correct: gold === sel });
    }
    pooled.tp += c.tp;
    pooled.fp += c.fp;
    pooled.fn += c.fn;
    perLabel[l] = { ...prf(c), ...c, support: c.tp + c.fn };
  }
  const n = items.length;
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
  return {
    n,
    accuracy: ratio(items.filter((it) => same(it.expected, it.selected)).length, n),
    macroF1: meanOf(labels.map((l) => perLabel[l].f1)),
    microF1: prf(pooled).f1,
    abstainRate: ratio(items.filter((it) => it.selected.length === 0).length, n),
    perLabel,
    calibration: calibration(decisions, binCount),
  };
}

// ---------------------------------------------------------------------------------------------
// Entity spans

/** A typed span, UTF-16 offsets, `end` exclusive. */
export interface TypedSpan {
  type: string;
  start: number;
  end: number;
}

/** A matched gold/predicted pair: indices into the two lists. */
export interface SpanPair {
  gold: number;
  predicted: number;
}

/** Overlap length of two half-open ranges (0 when disjoint or merely touching). */
export function overlap(a: TypedSpan, b: TypedSpan): number {
  return Math.max(0, Math.min(a.end, b.end) - Math.max(a.start, b.start));
}

/**
 * One-to-one matching of predicted spans to gold spans.
 * - `exact`: same type, start and end.
 * - `partial`: same type and overlapping ranges (at least one UTF-16 code unit in common).
 *   Greedy by overlap: all candidate pairs sorted by overlap length (longest first), then by gold
 *   index, then predicted index; a pair is taken when neither side is matched yet. So each gold
 *   span counts for at most one prediction and vice versa; an exact match is never displaced by a
 *   shorter overlap.
 * @returns the matched pairs, sorted by gold index.
 */
export function matchSpans(gold: readonly TypedSpan[], predicted: readonly TypedSpan[], mode: 'exact' | 'partial'): SpanPair[] {
  const cands: { gold: number; predicted: number; ov: number }[] = [];
  gold.forEach((g, i) => predicted.forEach((p, j) => {
    if (g.type !== p.type) return;
    if (mode === 'exact' ? g.start === p.start && g.end === p.end : overlap(g, p) > 0) cands.push({ gold: i, predicted: j, ov: overlap(g, p) });
  }));
  cands.sort((a, b) => b.ov - a.ov || a.gold - b.gold || a.predicted - b.predicted);
  const usedG = new Set<number>();
  const usedP = new Set<number>();
  const pairs: SpanPair[] = [];
  for (const c of cands) {
    if (usedG.has(c.gold) || usedP.has(c.predicted)) continue;
    usedG.add(c.gold);
    usedP.add(c.predicted);
    pairs.push({ gold: c.gold, predicted: c.predicted });
  }
  return pairs.sort((a, b) => a.gold - b.gold);
}

/** Per-type counts of one record under one matching mode. */
export function spanCounts(gold: readonly TypedSpan[], predicted: readonly TypedSpan[], mode: 'exact' | 'partial'): Map<string, Counts> {
  const out = new Map<string, Counts>();
  const get = (t: string) => {
    let c = out.get(t);
    if (!c) { c = { tp: 0, fp: 0, fn: 0 }; out.set(t, c); }
    return c;
  };
  const pairs = matchSpans(gold, predicted, mode);
  const mg = new Set(pairs.map((p) => p.gold));
  const mp = new Set(pairs.map((p) => p.predicted));
  gold.forEach((g, i) => { if (mg.has(i)) get(g.type).tp++; else get(g.type).fn++; });
  predicted.forEach((p, j) => { if (!mp.has(j)) get(p.type).fp++; });
  return out;
}

/** Precision / recall / F1 per entity type and pooled (micro) over all types. */
export interface SpanMetrics {
  micro: Prf & Counts;
  /** Mean F1 over the types with gold or predicted spans. */
  macroF1: number | null;
  perType: Record<string, Prf & Counts>;
}

/**
 * Span metrics summed over records.
 * @param types  the adapter's entity types (keys of `perType`, in this order; a predicted type not
 *   in the list is added after them).
 */
export function spanMetrics(types: readonly string[], records: readonly { gold: readonly TypedSpan[]; predicted: readonly TypedSpan[] }[], mode: 'exact' | 'partial'): SpanMetrics {
  const sum = new Map<string, Counts>(types.map((t) => [t, { tp: 0, fp: 0, fn: 0 }]));
  for (const r of records) {
    for (const [t, c] of spanCounts(r.gold, r.predicted, mode)) {
      const s = sum.get(t) ?? { tp: 0, fp: 0, fn: 0 };
      s.tp += c.tp;
      s.fp += c.fp;
      s.fn += c.fn;
      sum.set(t, s);
    }
  }
  const perType: SpanMetrics['perType'] = {};
  const total: Counts = { tp: 0, fp: 0, fn: 0 };
  for (const [t, c] of sum) {
    perType[t] = { ...prf(c), ...c };
    total.tp += c.tp;
    total.fp += c.fp;
    total.fn += c.fn;
  }
  return { micro: { ...prf(total), ...total }, macroF1: meanOf(Object.values(perType).map((p) => p.f1)), perType };
}

// ---------------------------------------------------------------------------------------------
// JSON fields

/**
 * Leaf values of a JSON value by JSON Pointer (RFC 6901; `~` and `/` in keys escaped as `~0`,
 * `~1`): strings, numbers, booleans and null, plus empty arrays and empty objects (so that an
 * expected `[]` is a field that can be right or wrong). The root itself is `""` when it is a leaf.
 * @returns pointer -> value, in document order.
 */
export function leafPointers(value: unknown, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v) && v.length) v.forEach((x, i) => walk(x, `${path}/${i}`));
    else if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) {
      for (const [k, x] of Object.entries(v)) walk(x, `${path}/${escapePointerToken(k)}`);
    } else out.set(path, v);
  };
  walk(value, prefix);
  return out;
}

/** Field-level comparison of one predicted JSON value with the expected one. */
export interface FieldComparison {
  /** Leaf pointers of the expected value whose predicted value is deep-equal. */
  matched: string[];
  /** Expected leaf pointers that are missing or different in the prediction. */
  wrong: string[];
  /** Leaf pointers of the prediction that the expected value does not have. */
  extra: string[];
  expectedFields: number;
  predictedFields: number;
}

/**
 * Compares leaf by leaf. Precision over the predicted leaves = matched / predictedFields (a leaf
 * predicted but not expected, or predicted with a wrong value, lowers it); recall over the
 * expected leaves = matched / expectedFields. A prediction of `undefined` (no value) has no leaves.
 */
export function compareFields(expected: unknown, predicted: unknown): FieldComparison {
  const exp = leafPointers(expected);
  const pred = predicted === undefined ? new Map<string, unknown>() : leafPointers(predicted);
  const matched: string[] = [];
  const wrong: string[] = [];
  for (const [p, v] of exp) {
    if (pred.has(p) && jsonEqual(pred.get(p), v)) matched.push(p);
    else wrong.push(p);
  }
  const extra = [...pred.keys()].filter((p) => !exp.has(p));
  return { matched, wrong, extra, expectedFields: exp.size, predictedFields: pred.size };
}

/** Per expected field pointer: how often it was expected and how often the prediction matched. */
export interface FieldMetrics {
  /** matched / expected fields, pooled over records (recall). */
  fieldAccuracy: number | null;
  /** matched / predicted fields, pooled over records. */
  fieldPrecision: number | null;
  /** Records whose whole value equals the expected one, / n. */
  exactMatchRate: number | null;
  perField: Record<string, { expected: number; matched: number; accuracy: number | null }>;
}

/** Pools {@link compareFields} over records; `perField` keys are sorted by first appearance. */
export function fieldMetrics(comparisons: readonly FieldComparison[]): FieldMetrics {
  let matched = 0;
  let expected = 0;
  let predicted = 0;
  let exact = 0;
  const per = new Map<string, { expected: number; matched: number }>();
  for (const c of comparisons) {
    matched += c.matched.length;
    expected += c.expectedFields;
    predicted += c.predictedFields;
    if (c.wrong.length === 0 && c.extra.length === 0) exact++;
    for (const p of c.matched) { const f = per.get(p) ?? { expected: 0, matched: 0 }; f.expected++; f.matched++; per.set(p, f); }
    for (const p of c.wrong) { const f = per.get(p) ?? { expected: 0, matched: 0 }; f.expected++; per.set(p, f); }
  }
  const perField: FieldMetrics['perField'] = {};
  for (const [p, f] of per) perField[p] = { ...f, accuracy: ratio(f.matched, f.expected) };
  return { fieldAccuracy: ratio(matched, expected), fieldPrecision: ratio(matched, predicted), exactMatchRate: ratio(exact, comparisons.length), perField };
}

// ---------------------------------------------------------------------------------------------
// Latency

/**
 * Nearest-rank percentile: the smallest value with at least `p`% of the values at or below it
 * (sorted ascending, the `ceil(p/100 * n)`-th value, at least the first). Null for no values.
 * @throws RangeError when `p` is not in (0, 100].
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}
