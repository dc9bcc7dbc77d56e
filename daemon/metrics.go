package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

// metrics are the daemon's Prometheus series.
type metrics struct {
	reg      *prometheus.Registry
	jobs     *prometheus.CounterVec
	steps    *prometheus.CounterVec
	rejected *prometheus.CounterVec
	stepWall prometheus.Histogram
	setup    prometheus.Histogram
}

func newMetrics(load func() (running, queued int), eng *engine.Engine) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandboxd_jobs_total", Help: "Jobs finished, by status.",
		}, []string{"status"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandboxd_steps_total", Help: "Steps finished, by verdict.",
		}, []string{"verdict"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandboxd_rejected_requests_total", Help: "Requests answered with an error, by error code.",
		}, []string{"code"}),
		stepWall: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sandboxd_step_wall_seconds", Help: "Wall time of steps, from exec to exit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sandboxd_job_setup_seconds", Help: "Time to set up a job's workspace and files.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
	}
	m.reg.MustRegister(m.jobs, m.steps, m.rejected, m.stepWall, m.setup,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sandboxd_running_sandboxes", Help: "Jobs holding a sandbox slot now.",
		}, func() float64 { r, _ := load(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sandboxd_queue_depth", Help: "Jobs waiting for a sandbox slot.",
		}, func() float64 { _, q := load(); return float64(q) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sandboxd_warm_sandboxes_ready", Help: "Built sandboxes waiting for a step, over every profile.",
		}, func() float64 { return float64(eng.WarmReady()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sandboxd_warm_sandbox_waits_total", Help: "Steps that found no warm sandbox ready and waited for one.",
		}, func() float64 { return float64(eng.PoolWaits()) }),
	)
	for _, v := range []api.Verdict{api.VerdictOK, api.VerdictNonzeroExit, api.VerdictSignaled, api.VerdictCPUTimeLimit,
		api.VerdictWallTimeLimit, api.VerdictMemoryLimit, api.VerdictOutputLimit, api.VerdictSyscallBlocked,
		api.VerdictExecFailed, api.VerdictSkipped, api.VerdictCancelled, api.VerdictInternalError} {
		m.steps.WithLabelValues(string(v))
	}
	return m
}

func (m *metrics) stepFinished(sr api.StepResult) {
	m.steps.WithLabelValues(string(sr.Verdict)).Inc()
	if sr.WallTimeMS > 0 {
		m.stepWall.Observe(sr.WallTimeMS / 1000)
	}
}

func (m *metrics) jobFinished(res *api.Result) {
	m.jobs.WithLabelValues(res.Status).Inc()
	m.setup.Observe(res.Timing.SetupMS / 1000)
}

func (m *metrics) reject(code string) { m.rejected.WithLabelValues(code).Inc() }
