package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
)

// underJournal says whether stderr is a stream to systemd's journal: the
// service manager sets JOURNAL_STREAM to the device and inode of the
// stream it connected (systemd.exec(5)), and a descriptor that is still
// that stream has the same.
func underJournal() bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		return false
	}
	return dev == strconv.FormatUint(st.Dev, 10) && ino == strconv.FormatUint(st.Ino, 10)
}

// journalFormatter writes logfmt lines without a timestamp (the journal
// stamps each line itself) and with the syslog priority prefix that
// journald reads off a stream (SyslogLevelPrefix=, on by default), so that
// `journalctl -p warning` finds the daemon's warnings:
//
//	<6>level=info msg="job finished" caller_uid=1000 job=r_... status=completed verdicts=ok ...
type journalFormatter struct{ text logrus.TextFormatter }

func newJournalFormatter() *journalFormatter {
	return &journalFormatter{text: logrus.TextFormatter{DisableTimestamp: true, DisableColors: true}}
}

// journalPriority is syslog's priority for each logrus level.
var journalPriority = map[logrus.Level]int{
	logrus.PanicLevel: 2, logrus.FatalLevel: 2, logrus.ErrorLevel: 3, logrus.WarnLevel: 4,
	logrus.InfoLevel: 6, logrus.DebugLevel: 7, logrus.TraceLevel: 7,
}

func (f *journalFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.text.Format(e)
	if err != nil {
		return nil, err
	}
	return append([]byte(fmt.Sprintf("<%d>", journalPriority[e.Level])), b...), nil
}
