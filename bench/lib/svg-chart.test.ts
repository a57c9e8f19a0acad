import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barChart, lineChart, tick } from './svg-chart.ts';

test('tick text is short: thousands as k, millions as M, small numbers kept', () => {
  assert.equal(tick(1500), '1.5k');
  assert.equal(tick(2_000_000), '2M');
  assert.equal(tick(0.5), '0.5');
});

test('a line chart draws one polyline per series with a point per finite value and names each in the legend', () => {
  const svg = lineChart({
    title: 'req/s vs clients',
    xLabel: 'clients',
    yLabel: 'req/s',
    logX: true,
    series: [
      {
        name: 'inflow',
        points: [
          [1, 100],
          [16, 1000],
          [64, Number.NaN],
        ],
      },
      {
        name: 'MLServer <py>',
        points: [
          [1, 50],
          [16, 300],
          [64, 400],
        ],
      },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(svg.match(/<polyline /g)?.length, 2);
  assert.equal(svg.match(/<circle /g)?.length, 5, 'the NaN point is left out');
  assert.match(svg, />MLServer &lt;py&gt;</, 'legend text is escaped');
});

test('a chart without any finite value says so instead of drawing axes from NaN', () => {
  assert.match(lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[1, Number.NaN]] }] }), /no data/);
  assert.match(barChart({ title: 't', yLabel: 'y', groups: [{ name: 'g', bars: [{ name: 'a', value: 0 }] }] }), /no data/);
});

test('a bar chart has one bar per positive value, labelled with its value', () => {
  const svg = barChart({
    title: 'records/s',
    yLabel: 'records/s',
    logY: true,
    groups: [
      {
        name: 'at-least-once',
        bars: [
          { name: 'inflow', value: 8000 },
          { name: 'quix', value: 5000 },
        ],
      },
      {
        name: 'exactly-once',
        bars: [
          { name: 'inflow', value: Number.NaN },
          { name: 'quix', value: 2800 },
        ],
      },
    ],
  });
  assert.equal(svg.match(/<title>/g)?.length, 3, 'one bar (with a tooltip) per positive value');
  assert.match(svg, /<title>inflow: 8k<\/title>/);
});
