/* placeholder so the library is never empty */
#include "ccgate/log.h"
