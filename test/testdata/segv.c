/* Dereferences NULL: must end with SIGSEGV. */
int main(void) { volatile int *p = 0; return *p; }
