package main

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestJournalFormatter(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(newJournalFormatter())
	log.WithFields(logrus.Fields{"job": "r_1", "verdicts": "ok,nonzero_exit"}).Info("job finished")
	log.WithField("job", "r_2").Error("job finished")
	want := "<6>level=info msg=\"job finished\" job=r_1 verdicts=\"ok,nonzero_exit\"\n" +
		"<3>level=error msg=\"job finished\" job=r_2\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestUnderJournal(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	if underJournal() {
		t.Error("under the journal without JOURNAL_STREAM")
	}
	// A stream that is not stderr's: not the journal's.
	t.Setenv("JOURNAL_STREAM", "1:2")
	if underJournal() {
		t.Error("under the journal with a JOURNAL_STREAM that is not stderr")
	}
	// Stderr as the journal would see it.
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = f
	defer func() { os.Stderr = old }()
	fi, _ := f.Stat()
	sys := fi.Sys().(*syscall.Stat_t)
	st := fmt.Sprintf("%d:%d", sys.Dev, sys.Ino)
	t.Setenv("JOURNAL_STREAM", st)
	if !underJournal() {
		t.Errorf("not under the journal with JOURNAL_STREAM=%s, stderr's own", st)
	}
}
