// Prints the test vectors that test_sign.c and test_cookie.c embed, computed
// by the npm packages express-session uses, so the C is checked against
// Express rather than against itself. Run:
//   mkdir -p /tmp/cs && cd /tmp/cs && npm init -y && \
//     npm install cookie-signature@1.0.7 cookie@0.7.2
//   NODE_PATH=/tmp/cs/node_modules node tests/unit/gen_vectors.js
'use strict';
const signature = require('cookie-signature');
const cookie = require('cookie');

// C string literal of a JS string's UTF-8 bytes; octal escapes, because a
// hex escape would swallow a following hex digit.
function c(s) {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x22 || b === 0x5c) out += '\\' + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f && b !== 0x3f) out += String.fromCharCode(b);
    else out += '\\' + b.toString(8).padStart(3, '0');
  }
  return out + '"';
}

const secrets = [
  'secret',
  'keyboard cat',
  'a 32-byte secret for fcgi-session',
  'WmQ1x3hYt0cV9f3kq7PZ8r2uHc5bN6jLs4aD1eG0iKo=',
  'this secret is longer than the 64-byte HMAC block, so HMAC hashes it first',
  'clé secrète de trente-deux octets au moins',
];
const ids = [
  'abc',
  'nc93lGy3AL5AfydR9DG4phvdX6VSIcfB',
  '87ngg0mOiNb52T9bWs_vPbbFrG92nQ0K',
  'kJ3x9Q2m_Z-aB7cD8eF9gH0iJ1kL2mN3',
  'Yv3nRk0_2bq-LwX8sT6fJ9mHc1dQ4pZ7aE5gU0oNiK2',
  'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  '0123456789abcdef',
  'x'.repeat(128),
  'has.a.dot',
  '',
];
console.log('/* {secret, id, "s:" + sign(id, secret), encodeURIComponent of that} */');
for (const s of secrets)
  for (const id of ids) {
    const v = 's:' + signature.sign(id, s);
    if (signature.unsign(v.slice(2), s) !== id) throw new Error('round trip');
    console.log(`    {${c(s)}, ${c(id)},\n     ${c(v)},\n     ${c(encodeURIComponent(v))}},`);
  }

const headers = [
  ['sid=abc', 'sid'], ['a=1; sid=xyz; b=2', 'sid'], [' sid = abc ', 'sid'],
  ['\tsid\t=\tabc\t', 'sid'], ['sid="abc"', 'sid'], ['sid=""', 'sid'], ['sid="', 'sid'],
  ['sid="abc', 'sid'], ['sid=abc"', 'sid'], ['sid=""abc""', 'sid'], ['sid = "  abc  "', 'sid'],
  ['sid=first; sid=second', 'sid'], ['sid=s%3Abad.x; sid=s%3Agood.y', 'sid'],
  ['sid=%E2%82%AC', 'sid'], ['sid=%C3%A9t%C3%A9', 'sid'], ['sid=%F0%9F%98%80', 'sid'],
  ['sid=%zz', 'sid'], ['sid=%', 'sid'], ['sid=%4', 'sid'], ['sid=a%4', 'sid'],
  ['sid=%FF', 'sid'], ['sid=%C3', 'sid'], ['sid=%C3%41', 'sid'], ['sid=%C0%80', 'sid'],
  ['sid=%ED%A0%80', 'sid'], ['sid=%F4%90%80%80', 'sid'], ['sid=%E2%82', 'sid'],
  ['sid=%C3%A9%zz', 'sid'], ['sid=a%20b', 'sid'], ['sid=a+b', 'sid'], ['sid=%41%42%43', 'sid'],
  ['sid=%2541', 'sid'], ['sid=%25', 'sid'],
  ['sid=s%3Aabc.mUba1OAOkT%2FIvo5dP34RCkqegy%2BD%2BwnDRShdeGONig4', 'sid'],
  ['foo; sid=abc', 'sid'], ['sid; other=1', 'sid'], ['sid', 'sid'], ['=abc; sid=x', 'sid'],
  ['=abc', ''], ['sid=', 'sid'], ['sid=;a=b', 'sid'], ['xsid=1; sidx=2', 'sid'],
  ['SID=1', 'sid'], ['sid=a=b', 'sid'], ['a=1;;; sid=2', 'sid'], ['a="x;y"; sid=3', 'sid'],
  ['a="x;y"; sid=3', 'a'], ['sid=1, sid2=2', 'sid'], ['a=b;sid=c', 'sid'],
  ['  ;  sid=1', 'sid'], ['sid=1;', 'sid'], ['sid=abc; Path=/; HttpOnly', 'sid'],
  ['a;b;c;sid=9', 'sid'], ['a;b=;sid=9', 'sid'], ['a;b=;sid=9', 'b'],
  ['__Host-sid=v; sid=w', '__Host-sid'], ['s=', 's'], ['=', ''], ['a', 'a'],
  ['session=expiry=123456789&=', 'session'], ['x=1;=2;y', ''], ['sid=\t"q"\t', 'sid'],
  ['sid=%22q%22', 'sid'], ['sid=%3B', 'sid'], ['sid = ; sid = 2', 'sid'],
];
console.log('/* {header, name, cookie.parse(header)[name], or NULL when absent} */');
for (const [h, n] of headers) {
  const v = cookie.parse(h)[n];
  const own = Object.prototype.hasOwnProperty.call(cookie.parse(h), n);
  console.log(`    {${c(h)}, ${c(n)}, ${own ? c(v) : 'NULL'}},`);
}

const values = [
  's:abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4', '', 'plain-Value_1.2~3',
  Array.from({length: 95}, (_, i) => String.fromCharCode(0x20 + i)).join(''),
  'é€😀', 'a b;c,d=e"f\\g',
];
console.log('/* {value, encodeURIComponent(value)} */');
for (const v of values) console.log(`    {${c(v)}, ${c(encodeURIComponent(v))}},`);

console.log('/* {seconds, new Date(seconds * 1000).toUTCString()} */');
for (const t of [0, 1, 784111777, 951782400, 1700000000, 1795372200, 4102444800, 253402300799])
  console.log(`    {${t}, ${c(new Date(t * 1000).toUTCString())}},`);
console.log('/* {milliseconds, new Date(ms).toISOString()} */');
for (const t of [0, 1, 999, 951782400999, 1795372200123, 4102444800000, 253402300799999])
  console.log(`    {${t}, ${c(new Date(t).toISOString())}},`);
