import { chromium } from 'playwright-core';
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu','--disable-background-networking'] });
const p = await b.newPage({ viewport: { width: 390, height: 844 } });
await p.goto('http://127.0.0.1:40435/'); await p.waitForTimeout(1500);
await p.screenshot({ path: '/tmp/phone-top.png' });
await p.locator('#terminal-table').scrollIntoViewIfNeeded(); await p.screenshot({ path: '/tmp/phone-terminals.png' });
await p.locator('#journal').scrollIntoViewIfNeeded(); await p.screenshot({ path: '/tmp/phone-journal.png' });
await b.close();
