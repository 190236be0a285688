// CDescentMath is header-only (see include/CDescentMath.h); SwiftPM needs one source file per C target.
#include "CDescentMath.h"
