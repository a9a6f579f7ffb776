import type { Translation } from '../../translation.js';
import type enUS from '../en-US/common.js';

const common: Translation<typeof enUS> = {
  errors: {
    generic: 'ボット側で問題が発生しました。画像は生成されていません。（参照 `{{- ref}}`）',
    commandGone: 'このコマンドはもう利用できません。',
    buttonGone: 'このボタンはもう使えません。',
    serverNotAllowed: 'このBotはこのサーバーでは利用できません。',
  },
  cancel: {
    notYours: 'この画像をリクエストしたメンバーだけがキャンセルできます。',
    tooLate: 'キャンセルするには遅すぎます。画像はすでに生成中（または生成済み）です。',
  },
  storage: {
    unavailable: '現在ボット側で問題が発生しているため、リクエストを受け付けられません。クレジットは消費されていません。1分後にもう一度お試しください。',
  },
};

export default common;
