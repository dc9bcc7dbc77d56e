#!/bin/bash
# One submission of the bench's judge case with no sandbox
# (test/bench/judge_linux.go): judge.sh SRC DIR TESTS N compiles SRC in DIR
# with g++ -O2, runs the binary on each of the N tests (TESTS/I.in as its
# stdin) one after the other, and compares its output with TESTS/I.ans as
# the daemon's expected_stdout does (trailing newlines aside, exactly).
# It prints the times (bash's $EPOCHREALTIME) before and after the compile
# and after the tests.
set -eu
src=$1 dir=$2 tests=$3 n=$4
cd "$dir"
t0=$EPOCHREALTIME
g++ -O2 -o sol "$src"
t1=$EPOCHREALTIME
for ((i = 0; i < n; i++)); do
	out=$(./sol <"$tests/$i.in")
	IFS= read -r want <"$tests/$i.ans"
	if [ "$out" != "$want" ]; then
		echo "test $i: got '$out', want '$want'" >&2
		exit 1
	fi
done
echo "$t0 $t1 $EPOCHREALTIME"
