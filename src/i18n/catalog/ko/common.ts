import type { Translation } from '../../translation.js';
import type enUS from '../en-US/common.js';

const common: Translation<typeof enUS> = {
  errors: {
    generic: '봇 쪽에서 문제가 발생했어요. 아무것도 생성되지 않았어요. (참조 `{{- ref}}`)',
    commandGone: '이 명령어는 더 이상 사용할 수 없어요.',
    buttonGone: '이 버튼은 더 이상 작동하지 않아요.',
    serverNotAllowed: '이 봇은 이 서버에서 사용할 수 없어요.',
  },
  cancel: {
    notYours: '이 이미지를 요청한 멤버만 취소할 수 있어요.',
    tooLate: '취소하기에는 너무 늦었어요. 이미지가 이미 생성 중이거나 생성이 끝났어요.',
  },
  storage: {
    unavailable: '봇 쪽에 문제가 있어 지금은 요청을 받을 수 없어요. 크레딧은 차감되지 않았어요. 1분 후에 다시 시도해 주세요.',
  },
};

export default common;
