/* JSON answers of msegd printed as YAML (`mseg ... -o yaml`) through
 * libyaml's emitter. A string that a YAML 1.1 reader would take for
 * something else (a bool such as True, On, off, yes; a null such as ~; a
 * number such as 1e3 or 0x1F; a date; the empty string) is quoted; numbers,
 * bools and nulls of the JSON stay plain. */
#ifndef MSEG_CLIENT_YAML_OUT_H
#define MSEG_CLIENT_YAML_OUT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

/* Would @s, written plain, be read back as anything but this string? */
bool yaml_out_needs_quotes(const char *s);

/* Write @j to @f as one YAML document (block style, no "---").
 * 0, -ENOMEM or -EIO (the emitter or @f failed). */
int yaml_out_print(FILE *f, const json_t *j);

#endif
