/*
 * Checking what the IPS module writes into Suricata's config and argv.
 */
#include "ips/ips_int.h"

int
pp__ips_plain(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return 0;
	return 1;
}
