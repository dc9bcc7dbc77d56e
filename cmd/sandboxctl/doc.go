// Command sandboxctl is the command-line client of sandboxd: it runs jobs
// and batches through the daemon's API (package api/client) and shows the
// daemon's state. It needs no root, only access to the daemon's socket.
//
//	sandboxctl [--socket PATH] COMMAND ...
//
//	run [flags] -- ARGV...     run one command in a sandbox and show its result
//	run --job FILE             run a job given as JSON
//	batch [flags] FILE.jsonl   run the jobs of an NDJSON file ("-": stdin);
//	                           --shard I/N: only part I of N, by job index
//	ps                         list the jobs running or queued
//	cancel ID                  cancel a job
//	info                       show the daemon, its host and its profiles
//	ping                       check that the daemon answers
//
// The socket is --socket, else $SANDBOXD_SOCKET, else client.DefaultSocket.
//
// Exit status: 0 when everything ran and every step is ok; 1 when a step's
// verdict is not ok (or a job did not complete); 2 for bad usage; 3 when
// the daemon answered an error or could not be reached; 130 when
// interrupted (the job is cancelled).
package main
