import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
} from 'chart.js';
import type { RunProgress } from './run.ts';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  Legend,
);

const MIB = 1024 * 1024;

/**
 * Live loss curve and the run's memory ledger as stacked bars (MiB): the measured terms (peaks over the steps, as
 * the CLI reports them) beside the predicted terms, like `kstar report --html`.
 */
export function createCharts(lossCanvas: HTMLCanvasElement, memoryCanvas: HTMLCanvasElement) {
  const loss = new Chart<'line', number[], number>(lossCanvas, {
    type: 'line',
    data: {
      labels: [],
      datasets: [{ label: 'training loss', data: [], borderColor: '#c33', pointRadius: 0 }],
    },
    options: { animation: false, scales: { x: { title: { display: true, text: 'step' } } } },
  });
  const terms = ['parameters', 'gradients (peak)', 'optimizer state', 'activations + temporaries (peak)'];
  const colors = ['#4477aa', '#66ccee', '#228833', '#ccbb44', '#ee6677', '#aa3377', '#bbbbbb', '#994455'];
  const memory = new Chart<'bar', (number | null)[], string>(memoryCanvas, {
    type: 'bar',
    data: { labels: ['measured', 'predicted'], datasets: [] },
    options: {
      animation: false,
      scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'MiB' } } },
    },
  });
  return {
    update(p: RunProgress): void {
      loss.data.labels!.push(p.step);
      loss.data.datasets[0]!.data.push(p.result.loss);
      loss.update();
      const m = p.memory;
      const measured = [m.paramBytes, m.gradBytes, m.optimizerStateBytes, m.activationPeakBytes];
      memory.data.datasets = [
        ...terms.map((label, i) => ({ label, data: [measured[i]! / MIB, null], backgroundColor: colors[i] })),
        ...Object.entries(m.predicted).map(([label, bytes], i) => ({
          label: `predicted ${label}`,
          data: [null, bytes / MIB],
          backgroundColor: colors[(i + 4) % colors.length],
        })),
      ];
      memory.update();
    },
  };
}
