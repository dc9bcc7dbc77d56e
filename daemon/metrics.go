package daemon

import (
	vmetrics "github.com/VictoriaMetrics/metrics"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
	"github.com/sandboxd/sandboxd/promtext"
)

// metrics are the daemon's Prometheus series, served as page.
type metrics struct {
	page     promtext.Page
	jobs     *vmetrics.Set // by status
	steps    *vmetrics.Set // by verdict
	rejected *vmetrics.Set // by error code
	stepWall *vmetrics.PrometheusHistogram
	setup    *vmetrics.PrometheusHistogram
}

func newMetrics(load func() (running, queued int), eng *engine.Engine) *metrics {
	m := &metrics{}
	m.jobs = m.page.Family("sandboxd_jobs_total", promtext.Counter, "Jobs finished, by status.")
	m.steps = m.page.Family("sandboxd_steps_total", promtext.Counter, "Steps finished, by verdict.")
	m.addRejected()
	m.stepWall = m.page.Family("sandboxd_step_wall_seconds", promtext.Histogram, "Wall time of steps, from exec to exit.").
		NewPrometheusHistogramExt("sandboxd_step_wall_seconds", vmetrics.ExponentialBuckets(0.001, 2.5, 14))
	m.setup = m.page.Family("sandboxd_job_setup_seconds", promtext.Histogram, "Time to set up a job's workspace and files.").
		NewPrometheusHistogramExt("sandboxd_job_setup_seconds", vmetrics.ExponentialBuckets(0.0001, 2.5, 12))
	m.page.Family("sandboxd_running_sandboxes", promtext.Gauge, "Jobs holding a sandbox slot now.").
		NewGauge("sandboxd_running_sandboxes", func() float64 { r, _ := load(); return float64(r) })
	m.page.Family("sandboxd_queue_depth", promtext.Gauge, "Jobs waiting for a sandbox slot.").
		NewGauge("sandboxd_queue_depth", func() float64 { _, q := load(); return float64(q) })
	m.page.Family("sandboxd_warm_sandboxes_ready", promtext.Gauge, "Built sandboxes waiting for a step, over every profile.").
		NewGauge("sandboxd_warm_sandboxes_ready", func() float64 { return float64(eng.WarmReady()) })
	m.page.Family("sandboxd_warm_sandbox_waits_total", promtext.Counter, "Steps that found no warm sandbox ready and waited for one.").
		NewGauge("sandboxd_warm_sandbox_waits_total", func() float64 { return float64(eng.PoolWaits()) })
	for _, v := range []api.Verdict{api.VerdictOK, api.VerdictNonzeroExit, api.VerdictSignaled, api.VerdictCPUTimeLimit,
		api.VerdictWallTimeLimit, api.VerdictMemoryLimit, api.VerdictOutputLimit, api.VerdictSyscallBlocked,
		api.VerdictExecFailed, api.VerdictSkipped, api.VerdictCancelled, api.VerdictInternalError} {
		m.steps.NewCounter(promtext.Series("sandboxd_steps_total", "verdict", string(v)))
	}
	return m
}

// addRejected adds sandboxd_rejected_requests_total, the one family a
// server without an engine (the HTTP tests') has too.
func (m *metrics) addRejected() {
	m.rejected = m.page.Family("sandboxd_rejected_requests_total", promtext.Counter, "Requests answered with an error, by error code.")
}

func (m *metrics) stepFinished(sr api.StepResult) {
	m.steps.GetOrCreateCounter(promtext.Series("sandboxd_steps_total", "verdict", string(sr.Verdict))).Inc()
	if sr.WallTimeMS > 0 {
		m.stepWall.Update(sr.WallTimeMS / 1000)
	}
}

func (m *metrics) jobFinished(res *api.Result) {
	m.jobs.GetOrCreateCounter(promtext.Series("sandboxd_jobs_total", "status", res.Status)).Inc()
	m.setup.Update(res.Timing.SetupMS / 1000)
}

func (m *metrics) reject(code string) {
	m.rejected.GetOrCreateCounter(promtext.Series("sandboxd_rejected_requests_total", "code", code)).Inc()
}
