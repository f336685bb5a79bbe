/* names: the naming rules (mseg/model/names.h). Byte tests, not <ctype.h>:
 * the rules must not depend on the locale. */
#include <string.h>

#include "mseg/model/names.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool name_is_dns_label(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > 63 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return false;
	for (i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* [A-Za-z0-9][A-Za-z0-9_.-]*, 1..max */
static bool ident_valid(const char *s, size_t max)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > max || !is_alnum(s[0]))
		return false;
	for (i = 1; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

bool name_is_endpoint_id(const char *s)
{
	return ident_valid(s, NAME_ENDPOINT_ID_MAX);
}

bool name_is_endpoint_name(const char *s)
{
	return ident_valid(s, NAME_ENDPOINT_NAME_MAX);
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, 1..63 */
static bool label_name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* RFC 1123 subdomain: labels of [a-z0-9-] separated by '.', <= 253 */
static bool dns_subdomain_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 253 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (!is_lower_alnum(s[i - 1]) || !is_lower_alnum(s[i + 1]))
				return false;
		} else if (!is_lower_alnum(s[i]) && s[i] != '-') {
			return false;
		}
	}
	return true;
}

bool name_is_label_key(const char *s)
{
	const char *slash = strchr(s, '/');

	if (!slash)
		return label_name_valid(s, strlen(s));
	return dns_subdomain_valid(s, (size_t)(slash - s)) &&
	       label_name_valid(slash + 1, strlen(slash + 1));
}

bool name_is_label_value(const char *s)
{
	size_t len = strlen(s);

	return len == 0 || label_name_valid(s, len);
}

bool name_is_dns_subdomain(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		bool edge = i == 0 || i == len - 1 || s[i - 1] == '.' || s[i + 1] == '.';

		if (((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			continue;
		if ((s[i] == '-' || s[i] == '.') && !edge)
			continue;
		return false;
	}
	return true;
}

bool name_is_port_name(const char *s)
{
	size_t len = strlen(s), i;
	bool letter = false;

	if (len == 0 || len > NAME_PORT_NAME_MAX || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (s[i] == '-' && s[i + 1] == '-')
			return false;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return false;
	}
	return letter;
}
