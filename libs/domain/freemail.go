package domain

import "slices"

// freeMailDomains lists consumer mail providers: an address at one of them says
// nothing about the person's employer, so the matcher never resolves an account from
// it. Sorted and unique (a test checks), every entry in the form [Normalize] returns.
// Treat as read-only; [FreeMailDomains] hands out copies.
var freeMailDomains = []string{
	"126.com", "139.com", "163.com", "188.com",
	"aim.com", "aol.co.uk", "aol.com", "aol.de",
	"aol.fr", "att.net", "bigpond.com", "bk.ru",
	"bol.com.br", "btinternet.com", "comcast.net", "cox.net",
	"daum.net", "earthlink.net", "email.com", "fastmail.com",
	"fastmail.fm", "free.fr", "freenet.de", "gmail.com",
	"gmx.at", "gmx.ch", "gmx.com", "gmx.de",
	"gmx.net", "googlemail.com", "hanmail.net", "hey.com",
	"hotmail.co.uk", "hotmail.com", "hotmail.de", "hotmail.es",
	"hotmail.fr", "hotmail.it", "hushmail.com", "icloud.com",
	"inbox.ru", "interia.pl", "laposte.net", "libero.it",
	"list.ru", "live.co.uk", "live.com", "live.de",
	"live.fr", "live.it", "live.nl", "mac.com",
	"mail.com", "mail.ru", "me.com", "msn.com",
	"naver.com", "ntlworld.com", "o2.pl", "onet.pl",
	"optusnet.com.au", "orange.fr", "outlook.com", "outlook.de",
	"outlook.es", "outlook.fr", "outlook.it", "pm.me",
	"proton.me", "protonmail.ch", "protonmail.com", "qq.com",
	"rambler.ru", "rediffmail.com", "rocketmail.com", "rogers.com",
	"sbcglobal.net", "seznam.cz", "shaw.ca", "sina.com",
	"sky.com", "sohu.com", "t-online.de", "terra.com.br",
	"tuta.com", "tuta.io", "tutamail.com", "tutanota.com",
	"tutanota.de", "uol.com.br", "verizon.net", "virgilio.it",
	"wanadoo.fr", "web.de", "windowslive.com", "wp.pl",
	"ya.ru", "yahoo.ca", "yahoo.co.in", "yahoo.co.jp",
	"yahoo.co.uk", "yahoo.com", "yahoo.com.au", "yahoo.com.br",
	"yahoo.de", "yahoo.es", "yahoo.fr", "yahoo.it",
	"yandex.by", "yandex.com", "yandex.kz", "yandex.ru",
	"yandex.ua", "ymail.com", "zoho.com", "zohomail.com",
}

// IsFreeMail reports whether a normalised domain belongs to a consumer mail
// provider (gmail.com, outlook.com, gmx.de, qq.com, ...). It matches exactly:
// normalise first with [Normalize] or [NormalizeEmail]; a subdomain such as
// "mail.yahoo.com" is not in the list.
func IsFreeMail(domain string) bool {
	_, found := slices.BinarySearch(freeMailDomains, domain)
	return found
}

// FreeMailDomains returns a sorted copy of the free-mail list.
func FreeMailDomains() []string {
	return slices.Clone(freeMailDomains)
}
