import { describe, expect, it } from 'vitest';
import { mockIPC } from '@tauri-apps/api/mocks';
import {
  WalletError,
  approveRequest,
  denyRequest,
  enrollmentPreview,
  onLocked,
  showRequest,
  toWalletError,
} from '../src/lib/api';
import { generalErrorMessage } from '../src/lib/messages';

describe('toWalletError', () => {
  it('keeps the kind and message the backend sent', () => {
    const e = toWalletError({ kind: 'unverified', message: 'bad signature' });
    expect(e).toBeInstanceOf(WalletError);
    expect(e.kind).toBe('unverified');
    expect(e.message).toBe('bad signature');
  });

  it('makes anything else an unknown error with its text', () => {
    expect(toWalletError('command show_request not found').kind).toBe('unknown');
    expect(toWalletError('command show_request not found').message).toBe(
      'command show_request not found',
    );
    expect(toWalletError({ kind: 'teapot', message: 'x' }).kind).toBe('unknown');
    expect(toWalletError(new TypeError('boom')).message).toBe('boom');
  });
});

describe('wrappers', () => {
  it('send the arguments under the names the Rust commands take', async () => {
    const seen: [string, unknown][] = [];
    mockIPC((cmd, args) => {
      seen.push([cmd, args]);
      return cmd === 'approve_request'
        ? { request_id: 'r', status: 'approved' }
        : cmd === 'deny_request'
          ? { request_id: 'r', status: 'denied' }
          : {};
    });
    await enrollmentPreview('countersign://enroll?x=1');
    await showRequest('r');
    await approveRequest('r');
    await denyRequest('r', null);
    expect(seen).toEqual([
      ['enrollment_preview', { uri: 'countersign://enroll?x=1' }],
      ['show_request', { id: 'r' }],
      ['approve_request', { id: 'r' }],
      ['deny_request', { id: 'r', reason: null }],
    ]);
  });

  it('reject with a WalletError', async () => {
    mockIPC(() => {
      throw { kind: 'expired', message: 'too late' };
    });
    await expect(approveRequest('r')).rejects.toMatchObject({ kind: 'expired', message: 'too late' });
    await expect(approveRequest('r')).rejects.toBeInstanceOf(WalletError);
  });
});

describe('new error kinds', () => {
  it('keeps locked, wrong_passphrase, weak_passphrase and platform', () => {
    for (const kind of ['locked', 'wrong_passphrase', 'weak_passphrase', 'platform']) {
      expect(toWalletError({ kind, message: 'x' }).kind).toBe(kind);
    }
  });

  it('tells onLocked listeners of a locked rejection, before the caller sees it', async () => {
    const seen: string[] = [];
    const stop = onLocked(() => seen.push('locked'));
    mockIPC(() => {
      throw { kind: 'locked', message: 'the wallet is locked; enter its passphrase' };
    });
    await expect(showRequest('r').catch((e: unknown) => {
      seen.push('caller');
      throw e;
    })).rejects.toMatchObject({ kind: 'locked' });
    expect(seen).toEqual(['locked', 'caller']);
    stop();
    await expect(showRequest('r')).rejects.toMatchObject({ kind: 'locked' });
    expect(seen).toHaveLength(2);
  });

  it('describes a platform failure with its message', () => {
    expect(generalErrorMessage(new WalletError('platform', 'passkey failed: no authenticator'))).toBe(
      "This device's keystore or passkey failed: passkey failed: no authenticator.",
    );
  });
});
