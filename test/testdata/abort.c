/* abort(): must end with SIGABRT, which only works when it is not pid 1. */
#include <stdlib.h>
int main(void) { abort(); }
