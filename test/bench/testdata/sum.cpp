// The bench's judge submission (test/bench/judge_linux.go): the sum of the
// whitespace-separated integers on stdin, as a contestant would write it.
#include <iostream>

// Each submission names itself here (the bench puts its number in place of
// SUBMISSION), so that each compiles to a binary of its own, as different
// submissions do.
extern "C" const char submission[] = "SUBMISSION";

int main() {
	std::ios::sync_with_stdio(false);
	std::cin.tie(nullptr);
	long long sum = 0, x;
	while (std::cin >> x)
		sum += x;
	std::cout << sum << '\n';
	return submission[0] == 0;
}
