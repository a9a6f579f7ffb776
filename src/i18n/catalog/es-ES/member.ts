import type { Translation } from '../../translation.js';
import type enUS from '../en-US/member.js';

const member: Translation<typeof enUS> = {};

export default member;
