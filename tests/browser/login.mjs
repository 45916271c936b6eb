// The demo as a person uses it, in headless Chromium: log in through the
// form with "Remember me", see the welcome once, reload, switch the theme
// to dark, end another device's session from the devices page, change the
// password, log out. Checks what the browser
// itself sees (its cookie jar, the rendered pages) and saves a screenshot of
// each page. Prints TAP; exits 1 when a check fails.
//
// Usage: BASE_URL=http://127.0.0.1:8080 node tests/browser/login.mjs
// Environment: BASE_URL (required), DEMO_PASSWORD (alice's password, default
// wonderland), SCREENSHOT_DIR (default build/screenshots), CHROMIUM (default
// /usr/bin/chromium).

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium, request } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const USER = 'alice';
const PASSWORD = process.env.DEMO_PASSWORD || 'wonderland';
const SHOTS = resolve(process.env.SCREENSHOT_DIR || join(ROOT, 'build/screenshots'));
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

// The machine has no network: without these, Chromium keeps trying to reach
// Google's services (updates, sync, safe browsing, QUIC probes) and fills
// the log with refused connections.
const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];

let n = 0;
let failed = 0;

function diag(text) {
    for (const line of String(text).split('\n'))
        console.log(`# ${line}`);
}

function check(cond, desc, details) {
    n++;
    if (cond) {
        console.log(`ok ${n} - ${desc}`);
        return true;
    }
    failed++;
    console.log(`not ok ${n} - ${desc}`);
    if (details !== undefined)
        diag(details);
    return false;
}

function is(got, want, desc) {
    return check(got === want, desc, `     got: ${JSON.stringify(got)}\nexpected: ${JSON.stringify(want)}`);
}

// The session cookie as the browser holds it, or undefined.
async function sidCookie(context) {
    return (await context.cookies(BASE_URL)).find((c) => c.name === 'sid');
}

async function text(page, selector) {
    return (await page.locator(selector).innerText()).replace(/\s+/g, ' ').trim();
}

// The flash messages the page shows (class="flash", role="status").
async function flashes(page) {
    return (await page.locator('.flash[role="status"]').allInnerTexts()).map((t) => t.trim());
}

// Another device of alice's: a client of its own, logged in with JSON.
async function otherDevice(password) {
    const device = await request.newContext({ baseURL: BASE_URL });
    const r = await device.post('/login', {
        data: { username: USER, password },
        headers: { Origin: BASE_URL, 'User-Agent': 'OtherDevice/1.0' },
        failOnStatusCode: false,
    });
    is(r.status(), 200, 'another device logs in');
    return device;
}

async function isLoggedIn(device) {
    const r = await device.get('/session', { headers: { Accept: 'application/json' }, failOnStatusCode: false });
    return r.status() === 200 && (await r.json()).authenticated === true;
}

async function shot(page, name) {
    const path = join(SHOTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    diag(`screenshot ${path}`);
}

async function run(context, page) {
    // Every document the flow loads must answer 2xx or 3xx (checked before
    // the 401s the end asks for), and no page may raise a script error.
    const badResponses = [];
    const pageErrors = [];
    page.on('response', (r) => {
        if (['document', 'stylesheet'].includes(r.request().resourceType()) && r.status() >= 400)
            badResponses.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // Chromium asks every site for /favicon.ico; the demo has none, and
    // that 404 is no fault of a page.
    page.on('console', (m) => {
        if (m.type() === 'error' && !/\/favicon\.ico$/.test(m.location().url || ''))
            pageErrors.push(`${m.text()} (${m.location().url})`);
    });

    // --- the login form
    let resp = await page.goto(`${BASE_URL}/login`);
    is(resp.status(), 200, 'GET /login: 200');
    check(await page.getByLabel('Username').isVisible(), 'the login form has a labelled username field');
    is(await page.getByLabel('Password').getAttribute('type'), 'password', 'the password field hides what is typed');
    is(await sidCookie(context), undefined, 'the login form sets no cookie');
    const remember = page.getByLabel('Remember me');
    is(await remember.getAttribute('type'), 'checkbox', 'the login form has a Remember me checkbox');
    await shot(page, 'login');

    // --- the stylesheet: a file the web server serves, which the page's
    // CSP (style-src 'self') lets apply; a refused one is a console error.
    const sheets = await page.evaluate(() => [...document.styleSheets].map((s) => s.href));
    is(sheets.map((h) => h && new URL(h).pathname).join(' '), '/static/style.css',
       'the page has one stylesheet, /static/style.css');
    is(await page.evaluate(() => getComputedStyle(document.querySelector('main')).borderTopLeftRadius),
       '12px', 'the stylesheet applies (main.card has its rounded corners)');

    await page.getByLabel('Username').fill(USER);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await remember.check();
    await Promise.all([
        page.waitForURL((u) => u.pathname === '/dashboard'),
        page.getByRole('button', { name: 'Log in' }).click(),
    ]);
    is(new URL(page.url()).pathname, '/dashboard', 'logging in through the form lands on /dashboard');
    let facts = await text(page, '.facts');
    check(/User: alice\b/.test(facts), 'the dashboard shows the username alice', `facts: ${facts}`);
    check(/Role: admin\b/.test(facts), 'the dashboard shows the role admin', `facts: ${facts}`);
    const expires = await page.locator('.facts time').getAttribute('datetime');
    check(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(expires || '') && Date.parse(expires) > Date.now(),
          'the dashboard shows a session expiry in the future', `datetime: ${expires}`);

    is((await flashes(page)).join('|'), 'Welcome back, alice', 'the dashboard welcomes alice back, once');

    let sid = await sidCookie(context);
    check(sid !== undefined, 'logged in: the browser holds the sid cookie',
          `cookies: ${JSON.stringify(await context.cookies())}`);
    is(sid?.httpOnly, true, 'the sid cookie is HttpOnly');
    is(sid?.sameSite, 'Lax', 'the sid cookie is SameSite=Lax');
    is(sid?.path, '/', 'the sid cookie has Path=/');
    check(sid !== undefined && sid.expires > Date.now() / 1000 + 29 * 86400,
          'remembered: the sid cookie persists for 30 days', `expires: ${sid?.expires}`);
    is(await page.evaluate(() => document.cookie.includes('sid=')), false,
       'page scripts cannot read the sid cookie');
    await shot(page, 'dashboard');

    // --- reload: the cookie alone keeps the login
    resp = await page.reload();
    is(resp.status(), 200, 'reload of /dashboard: 200');
    facts = await text(page, '.facts');
    check(/User: alice\b/.test(facts) && /Role: admin\b/.test(facts), 'after a reload: still logged in as alice (admin)',
          `facts: ${facts}`);
    is((await sidCookie(context))?.value, sid?.value, 'the reload keeps the same session cookie');
    is((await flashes(page)).length, 0, 'after a reload the welcome is gone');

    // --- the theme, through the preferences form on the dashboard
    const before = await page.locator('html').getAttribute('data-theme');
    check(before !== 'dark', 'before the change the page is not dark', `data-theme: ${before}`);
    const form = page.locator('form[action="/prefs"]');
    await form.locator('select[name="theme"]').selectOption('dark');
    // The page is on /dashboard already: wait for the GET that the 303
    // after the POST leads to, then for that page to load.
    await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'GET'
            && new URL(r.url()).pathname === '/dashboard' && r.request().redirectedFrom() !== null),
        form.getByRole('button', { name: 'Save' }).click(),
    ]);
    await page.waitForLoadState('load');
    is(new URL(page.url()).pathname, '/dashboard', 'saving the preferences returns to the dashboard (303)');
    is(await page.locator('html').getAttribute('data-theme'), 'dark', 'the next page has data-theme="dark" on <html>');
    is((await flashes(page)).join('|'), 'Preferences saved', 'and says Preferences saved');
    const bg = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    check(/^rgb\((\d+), (\d+), (\d+)\)$/.test(bg) && bg.match(/\d+/g).every((c) => Number(c) < 64),
          'and is drawn dark', `page background: ${bg}`);

    resp = await page.goto(`${BASE_URL}/dashboard`);
    is(resp.status(), 200, 'back on /dashboard: 200');
    is(await page.locator('html').getAttribute('data-theme'), 'dark', 'the dashboard is dark too');
    is(await page.locator('form[action="/prefs"] select[name="theme"]').inputValue(), 'dark',
       'the form shows dark as the current theme');
    is((await flashes(page)).length, 0, 'once only');
    await shot(page, 'dashboard-dark');

    // --- your devices: end another device's session, then all the others
    let device = await otherDevice(PASSWORD);
    await Promise.all([
        page.waitForURL((u) => u.pathname === '/devices'),
        page.locator('main').getByRole('link', { name: 'Your devices' }).click(),
    ]);
    is(await page.locator('table.devices tbody tr').count(), 2, 'the devices page lists this device and the other');
    check(/OtherDevice\/1\.0/.test(await text(page, 'table.devices')), 'the other row names its browser');
    await shot(page, 'devices');
    await Promise.all([
        page.waitForURL((u) => u.pathname === '/devices'),
        page.locator('tbody tr:not([aria-current])').getByRole('button', { name: 'Log out' }).click(),
    ]);
    is(await page.locator('table.devices tbody tr').count(), 1, 'after its Log out, one row is left');
    is(await isLoggedIn(device), false, 'the other device is logged out');
    await device.dispose();
    const devices = [await otherDevice(PASSWORD), await otherDevice(PASSWORD)];
    await page.reload();
    await Promise.all([
        page.waitForURL((u) => u.pathname === '/devices'),
        page.getByRole('button', { name: 'Log out all other devices' }).click(),
    ]);
    is(await page.locator('table.devices tbody tr').count(), 1, 'Log out all other devices leaves this one');
    for (const d of devices) {
        is(await isLoggedIn(d), false, 'an other device is logged out');
        await d.dispose();
    }

    // --- the password
    device = await otherDevice(PASSWORD);
    resp = await page.goto(`${BASE_URL}/password`);
    is(resp.status(), 200, 'GET /password: the form');
    const newPassword = `${PASSWORD} and more`;
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel(/^New password/).fill(newPassword);
    await Promise.all([
        page.waitForURL((u) => u.pathname === '/dashboard'),
        page.getByRole('button', { name: 'Change password' }).click(),
    ]);
    is((await flashes(page)).join('|'), 'Password changed', 'the dashboard says Password changed');
    const renewed = await sidCookie(context);
    check(renewed !== undefined && renewed.value !== sid?.value, 'the password change gives a new cookie');
    check(/User: alice\b/.test(await text(page, '.facts')), 'and alice is still logged in');
    is(await isLoggedIn(device), false, 'the password change logged the other device out');
    await device.dispose();
    sid = renewed;

    // --- logout: a confirm form, then the server forgets the session
    resp = await page.goto(`${BASE_URL}/logout`);
    is(resp.status(), 200, 'GET /logout: 200, a confirm form');
    check(/logged in as alice/.test(await text(page, 'main')), 'the confirm form names the user');
    is((await sidCookie(context))?.value, sid?.value, 'the confirm form alone does not log out');
    await Promise.all([
        page.waitForURL((u) => u.pathname === '/'),
        page.locator('form[action="/logout"]').getByRole('button', { name: 'Log out' }).click(),
    ]);
    is(new URL(page.url()).pathname, '/', 'confirming lands on /');
    const heading = await text(page, 'main h1');
    is(heading, 'Welcome', 'the home page greets a visitor, not alice');
    check(await page.locator('header nav').getByRole('link', { name: 'Log in' }).isVisible(),
          'the navigation offers to log in');
    const gone = await sidCookie(context);
    check(gone === undefined || (gone.expires !== -1 && gone.expires <= Date.now() / 1000),
          'after logout the sid cookie is gone or expired', `cookie: ${JSON.stringify(gone)}`);
    await shot(page, 'after-logout');
    check(badResponses.length === 0, 'every page of the flow answered 2xx or 3xx', badResponses.join('\n'));
    check(pageErrors.length === 0, 'no script or console errors', pageErrors.join('\n'));

    // The old cookie, sent again by hand, names nothing on the server.
    if (sid) {
        const replay = await context.request.get(`${BASE_URL}/dashboard`, {
            headers: { Cookie: `sid=${sid.value}`, Accept: 'application/json' },
            failOnStatusCode: false,
        });
        is(replay.status(), 401, 'the pre-logout cookie replayed: /dashboard answers 401');
    }
    resp = await page.goto(`${BASE_URL}/dashboard`);
    is(resp.status(), 401, 'in the browser, /dashboard now answers 401');
}

async function main() {
    if (!/^https?:\/\/[^/]+$/.test(BASE_URL)) {
        console.log('Bail out! BASE_URL must be set to the demo, e.g. http://127.0.0.1:8080');
        return 2;
    }
    await mkdir(SHOTS, { recursive: true });
    // A profile of our own, empty, so nothing from an earlier run (cookies,
    // cache) can make a check pass.
    const profile = await mkdtemp(join(tmpdir(), 'fcgi-session-chromium-'));
    let context;
    try {
        context = await chromium.launchPersistentContext(profile, {
            executablePath: EXECUTABLE,
            headless: true,
            args: CHROMIUM_ARGS,
            viewport: { width: 1024, height: 720 },
            timeout: 60000,
        });
    } catch (e) {
        console.log(`Bail out! Chromium did not start: ${e.message.split('\n')[0]}`);
        diag(e.message);
        await rm(profile, { recursive: true, force: true });
        return 2;
    }
    context.setDefaultTimeout(15000);
    let page;
    try {
        page = context.pages()[0] || (await context.newPage());
        await run(context, page);
    } catch (e) {
        // An action that failed (a missing field, a navigation that never
        // came) ends the run: what follows depends on it. Where the browser
        // was tells why more often than the stack does.
        let where = '';
        if (page) {
            const main = await page.locator('main').innerText({ timeout: 1000 }).catch(() => '');
            where = `\nthe browser is at ${page.url()}: ${main.replace(/\s+/g, ' ').slice(0, 300)}`;
        }
        check(false, 'the flow ran to the end', (e.stack || e.message) + where);
    } finally {
        await context.close();
        await rm(profile, { recursive: true, force: true });
    }
    console.log(`1..${n}`);
    return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
