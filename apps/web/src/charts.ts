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

/** Live loss curve and the memory ledger of the latest step as stacked bars by term (MiB). */
export function createCharts(lossCanvas: HTMLCanvasElement, memoryCanvas: HTMLCanvasElement) {
  const loss = new Chart<'line', number[], number>(lossCanvas, {
    type: 'line',
    data: {
      labels: [],
      datasets: [{ label: 'training loss', data: [], borderColor: '#c33', pointRadius: 0 }],
    },
    options: { animation: false, scales: { x: { title: { display: true, text: 'step' } } } },
  });
  const terms = [
    'parameters',
    'gradients (peak)',
    'optimizer state',
    'activations + temporaries (peak)',
  ] as const;
  const colors = ['#4477aa', '#66ccee', '#228833', '#ccbb44'];
  const memory = new Chart(memoryCanvas, {
    type: 'bar',
    data: {
      labels: ['measured', 'optimizer predicted'],
      datasets: terms.map((label, i) => ({ label, data: [0, 0], backgroundColor: colors[i] })),
    },
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
      const r = p.result;
      const measured = [r.paramBytes, r.gradPeakBytes, r.optimizerStateBytes, r.activationPeakBytes];
      memory.data.datasets.forEach((set, i) => {
        set.data = [measured[i]! / MIB, i === 2 ? p.predictedOptimizerBytes / MIB : 0];
      });
      memory.update();
    },
  };
}
