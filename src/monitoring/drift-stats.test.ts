import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  binProportions,
  chiSquare,
  gammaincc,
  jensenShannon,
  kolmogorovSf,
  ks2samp,
  psi,
  quantileEdges,
  sortedFinite,
} from './drift-stats.ts';

/** Written by scripts/monitoring/drift-golden.py from numpy/scipy on the same samples. */
const golden = JSON.parse(readFileSync(new URL('./fixtures/drift-golden.json', import.meta.url), 'utf8')) as {
  numeric: Array<{
    name: string;
    reference: number[];
    current: number[];
    edges: number[];
    expected: number[];
    actual: number[];
    psi: number;
    ksStatistic: number;
    ksPValueAsymptotic: number;
  }>;
  categorical: Array<{
    name: string;
    observed: number[];
    expected: number[];
    referenceProportions: number[];
    chiSquareStatistic: number;
    chiSquarePValue: number;
    jensenShannon: number;
  }>;
  kolmogorovSf: Array<{ z: number; sf: number }>;
  gammaincc: Array<{ a: number; x: number; q: number }>;
};

const TOLERANCE = 1e-6;
function close(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= TOLERANCE,
    `${what}: ${actual} vs the reference's ${expected} (off by ${Math.abs(actual - expected)})`,
  );
}

describe('drift statistics agree with scipy/numpy to 1e-6', () => {
  it('the fixture holds the cases the generator writes (so the comparisons below cannot pass vacuously)', () => {
    assert.equal(golden.numeric.length, 6);
    assert.equal(golden.categorical.length, 4);
    assert.ok(golden.kolmogorovSf.length > 5 && golden.gammaincc.length > 5);
  });

  for (const c of golden.numeric) {
    it(`numeric "${c.name}": quantile edges, bin proportions, PSI, KS statistic and p-value`, () => {
      const ref = sortedFinite(c.reference);
      const cur = sortedFinite(c.current);
      const edges = quantileEdges(ref, 10);
      assert.equal(edges.length, c.edges.length);
      edges.forEach((e, i) => close(e, c.edges[i] as number, `edge ${i}`));
      const expected = binProportions(edges, ref);
      const actual = binProportions(edges, cur);
      expected.forEach((p, i) => close(p, c.expected[i] as number, `reference bin ${i}`));
      actual.forEach((p, i) => close(p, c.actual[i] as number, `current bin ${i}`));
      close(psi(expected, actual), c.psi, 'PSI');
      const ks = ks2samp(ref, cur);
      close(ks.statistic, c.ksStatistic, 'KS statistic');
      close(ks.pValue, c.ksPValueAsymptotic, 'KS p-value');
    });
  }

  for (const c of golden.categorical) {
    it(`categorical "${c.name}": chi-square statistic and p-value, Jensen–Shannon distance`, () => {
      const chi = chiSquare(c.observed, c.expected);
      close(chi.statistic, c.chiSquareStatistic, 'chi-square statistic');
      close(chi.pValue, c.chiSquarePValue, 'chi-square p-value');
      close(jensenShannon(c.referenceProportions, c.observed), c.jensenShannon, 'Jensen–Shannon distance');
    });
  }

  it('the Kolmogorov survival function equals scipy.stats.kstwobign.sf on both sides of z = 1', () => {
    for (const { z, sf } of golden.kolmogorovSf) close(kolmogorovSf(z), sf, `kstwobign.sf(${z})`);
  });

  it('the regularized upper incomplete gamma equals scipy.special.gammaincc', () => {
    for (const { a, x, q } of golden.gammaincc) close(gammaincc(a, x), q, `gammaincc(${a}, ${x})`);
  });
});

describe('drift statistics on bad input', () => {
  it('chi-square refuses a category the reference never saw (expected count 0) instead of dividing by zero', () => {
    assert.throws(() => chiSquare([3, 1], [4, 0]), { code: 'INVALID_ARGUMENT' });
  });
  it('KS refuses an empty window', () => {
    assert.throws(() => ks2samp([], [1, 2]), { code: 'INVALID_ARGUMENT' });
  });
  it('PSI refuses bins that do not line up', () => {
    assert.throws(() => psi([0.5, 0.5], [1]), { code: 'INVALID_ARGUMENT' });
  });
});
