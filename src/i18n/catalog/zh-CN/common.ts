import type { Translation } from '../../translation.js';
import type enUS from '../en-US/common.js';

const common: Translation<typeof enUS> = {
  errors: {
    generic: '机器人这边出了问题，没有生成任何内容。（参考编号 `{{- ref}}`）',
    commandGone: '此命令已不再可用。',
    buttonGone: '此按钮已失效。',
    serverNotAllowed: '此机器人在本服务器中不可用。',
  },
  cancel: {
    notYours: '只有请求这些图片的成员才能取消。',
    tooLate: '来不及取消了：图片已在生成中（或已生成完毕）。',
  },
  storage: {
    unavailable: '机器人这边出了故障，暂时无法接受请求。没有扣除任何额度，请一分钟后再试。',
  },
};

export default common;
