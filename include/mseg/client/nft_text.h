/* The nft text of a read-back table, made shorter for people. */
#ifndef MSEG_CLIENT_NFT_TEXT_H
#define MSEG_CLIENT_NFT_TEXT_H

#include <stddef.h>

/* @text without the set blocks that have no elements ("\tset NAME {" up
 * to its "\t}", and the blank line after it); *@ret_dropped gets how many
 * were left out. A new string; NULL: out of memory. */
char *client_nft_text_compact(const char *text, size_t *ret_dropped);

#endif
