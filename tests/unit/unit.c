/*
 * unit.c: the main() of every Check suite under tests/unit/: runs the
 * suite the program was linked with (unit_def, see unit.h); the exit
 * status is what make check reads. Test code only.
 */
#include <stdlib.h>

#include "unit.h"

int main(void)
{
	SRunner *sr = srunner_create(unit_def.build());
	int failed;

#ifdef CHECK_ASAN
	if ((unit_def.flags & UNIT_NOFORK_UNDER_ASAN) && getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_NOFORK);
#endif
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
